# Strangler's image: the proxy, and the two demo programs docker-compose.yml
# runs next to it (the legacy shop and the stock service), so that one image
# serves all three.
#
#   docker build -t strangler .
#   docker run --rm -p 8080:8080 -v /srv/strangler:/etc/strangler strangler
#
# The mounted folder holds routes.conf. It is a folder, not the file alone: a
# flip writes routes.conf atomically, through a temporary file in the same
# folder and rename(2), which a bind mount of the file itself would refuse
# (EBUSY). So the folder must be writable by the image's user (STRANGLER_UID).

# ---- build: the -dev packages of .ci/packages that compiling needs ----------
FROM debian:12 AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libevent-dev libcurl4-openssl-dev libxml2-dev libjson-c-dev librabbitmq-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
# Neither the tests (Check) nor the benchmarks: only the two programs the
# image runs.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DSTRANGLER_TESTS=OFF -DSTRANGLER_BENCH=OFF -DSTRANGLER_EXAMPLES=ON \
 && cmake --build /build -j "$(nproc)" --target strangler stock-service

# ---- runtime: the shared libraries the two binaries link, and python3 -------
FROM debian:12-slim

# The uid the processes run as. docker-compose.yml passes the uid that owns
# the checkout (default 1000), so a flip can write examples/docker/routes.conf.
ARG STRANGLER_UID=10001
ARG STRANGLER_GID=10001

# strangler links libevent_core, libevent_extra and libevent_pthreads, which
# Debian ships in three packages (libevent-2.1-7 is the all-in-one library,
# which nothing here links), and libcurl, libxml2, json-c and librabbitmq.
# stock-service links a subset. python3 runs the demo legacy shop and the
# healthchecks of docker-compose.yml.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libevent-core-2.1-7 libevent-extra-2.1-7 libevent-pthreads-2.1-7 \
        libcurl4 libxml2 libjson-c5 librabbitmq4 \
        python3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid "$STRANGLER_GID" strangler \
 && useradd --system --uid "$STRANGLER_UID" --gid strangler \
        --home-dir /var/lib/strangler --no-create-home --shell /usr/sbin/nologin strangler \
 && install -d -o strangler -g strangler -m 0750 \
        /etc/strangler /var/lib/strangler /var/lib/strangler/spool

COPY --from=build /build/strangler /build/examples/stock-service/stock-service /usr/local/bin/
COPY examples/legacy-shop/shop.py /opt/strangler/examples/legacy-shop/shop.py
# The default configuration, the one docker-compose.yml mounts over it.
COPY --chown=strangler:strangler examples/docker/routes.conf /etc/strangler/routes.conf

USER strangler
WORKDIR /var/lib/strangler
# The spool: events wait here until the broker confirms them. One per
# instance, never shared.
VOLUME /var/lib/strangler/spool
# 8080: clients (listen). 8081: the admin API (admin; needs a token off
# loopback, routes.conf reads it from $STRANGLER_ADMIN_TOKEN).
EXPOSE 8080 8081

ENTRYPOINT ["strangler"]
CMD ["-c", "/etc/strangler/routes.conf"]
