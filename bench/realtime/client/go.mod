module msgbus/bench/realtime/client

go 1.21
