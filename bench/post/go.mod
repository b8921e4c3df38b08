module msgbus/bench/post

go 1.21
