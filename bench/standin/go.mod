module msgbus/bench/standin

go 1.21
