# msgbus: make run | make test (see README.md)

SHELL := /bin/bash

STORE_PORT ?= 27017
HTTP_PORT ?= 8080
LISTEN ?=
MONGODB_URI ?=
RESOLVER ?=
RUN := $(CURDIR)/.run
NGINX ?= /usr/sbin/nginx
# make run's settings reach t/util/run.sh as they are (a connection string
# can hold any character)
export STORE_PORT HTTP_PORT LISTEN MONGODB_URI RESOLVER RUN

VALGRIND_OPTS ?= --tool=memcheck --leak-check=full --show-possibly-lost=no --num-callers=30 --suppressions=$(CURDIR)/t/util/valgrind.suppress

.PHONY: all deps build asan run stop test test-asan test-valgrind style clean bench-adapter bench-messages bench-claims bench-realtime bench-depth bench bench-quick deb test-deb

all: build

deps:
	@t/util/deps.sh

build:
	@t/util/build.sh default

asan:
	@t/util/build.sh asan

# nginx serving the bus on $(LISTEN) (default 127.0.0.1:$(HTTP_PORT)), with
# the embedded store on 127.0.0.1:$(STORE_PORT), or with the MongoDB of
# MONGODB_URI and no embedded store (t/util/run.sh).
run: deps build
	@NGINX_BIN='$(NGINX)' t/util/run.sh start

stop:
	@NGINX_BIN='$(NGINX)' t/util/run.sh stop

test: deps build style
	@t/util/run-tests.sh

test-asan: deps asan
	@FLAVOUR=asan t/util/run-tests.sh

test-valgrind: deps build
	@command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
	@TEST_NGINX_USE_VALGRIND='$(VALGRIND_OPTS)' t/util/run-tests.sh

# The C style gate, then the layers: sizes, prototypes, calls only down.
style:
	@t/util/style-check
	@t/util/layer-check

clean:
	rm -rf .build t/servroot

# libnginx-mod-http-msgbus_<version>_<arch>.deb in .build/deb for the nginx
# installed here; test-deb installs, serves, removes it (t/util/deb/).
deb:
	@t/util/deb/build.sh

test-deb: deps
	@t/util/deb/test.sh

# Store round trips/s through the adapter next to libmongoc (bench/adapter/README.md).
bench-adapter: deps build
	@bench/adapter/run.sh

# A page of messages next to static nginx, and the ordering run at scale (bench/messages/README.md).
bench-messages: deps build
	@bench/messages/run.sh

# Claim-and-delete throughput with 8 consumers next to post throughput (bench/claims/README.md).
bench-claims: deps build
	@bench/claims/run.sh

# Fan-out to parked long-polls and SSE streams next to Nchan (bench/realtime/README.md).
bench-realtime: deps build
	@bench/realtime/run.sh

# Tail-page GET, POST and claim against one queue at 100, 10,000 and
# 100,000 messages: store CPU per operation and requests/s (bench/depth/README.md).
bench-depth: deps build
	@bench/depth/run.sh

# The seed's benchmark: msgbus next to Gevent, Tornado, Node.js, OpenStack
# Zaqar, static nginx and the store's ceiling, swept with httperf, on the
# real store and on the stand-in for a fast MongoDB (bench/seed/README.md).
# bench-quick: the GET workload at 4 rates, 4 contenders, both stores.
bench: deps build
	@bench/seed/run.sh

bench-quick: deps build
	@bench/seed/run.sh --quick
