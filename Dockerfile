# syntax=docker/dockerfile:1
# pod-gateway: one Bun-compiled binary on a distroless base (glibc, no shell, no package manager),
# plus exactly the programs the gateway roles run: iptables (nf_tables and legacy), nft, dnsmasq.
# The client roles run none (links, addresses, routes and rules go through rtnetlink in-process).
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VCS_REF=$(git rev-parse --short=12 HEAD) --build-arg VERSION=0.1.0 -t pod-gateway .
#
# What goes into the image is listed once, in config/image/rootfs.json. src/image/assemble.ts turns it into a
# directory tree from the Debian packages of the target architecture; test/netns/rootfs-image.test.ts
# runs the same script on the build machine and runs the roles inside the result.

# The distroless base and the Debian stage the tools come from must be the same Debian release
# (debian12 = bookworm), so the tools' libraries match the base's glibc.
ARG BASE_IMAGE=gcr.io/distroless/base-debian12
ARG DEBIAN_IMAGE=debian:bookworm-slim
ARG NODE_IMAGE=node:22-bookworm-slim

# ---- tools: Bun and the sources, on the builder's own architecture --------------------------
# Bun comes from package-lock.json (the bun npm package, pinned), as on a developer machine.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS tools
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json build.ts ./
COPY src/ src/
COPY config/ config/

# The Debian packages to install, from the manifest (the Debian stage has no Bun to read it).
RUN node_modules/.bin/bun src/image/assemble.ts --print-packages > /packages.txt

# ---- build: cross-compiles for the target (Bun fetches the target's runtime) ----------------
FROM tools AS build
ARG TARGETARCH
ARG VCS_REF=""
# build.ts checks the result's ELF header (architecture, loader, embedded program); on a
# same-architecture build it also runs `pod-gateway version`.
RUN POD_GATEWAY_COMMIT="${VCS_REF}" node_modules/.bin/bun build.ts --target "${TARGETARCH}"

# ---- debian: the tools and their libraries for the target architecture ----------------------
# For a foreign architecture this RUN executes under emulation (buildx with QEMU binfmt), as in
# any multi-arch Debian image build; it is the only step that does.
FROM ${DEBIAN_IMAGE} AS debian
COPY --from=tools /packages.txt /tmp/packages.txt
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive xargs -a /tmp/packages.txt apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*

# ---- rootfs: the image layer, assembled by the same script the tests run -------------------
# Nothing from the target's sysroot is executed here (libraries are found from ELF headers), so
# this runs natively on the builder even for another architecture.
FROM build AS rootfs
COPY --from=debian / /sysroot/
ARG TARGETARCH
RUN node_modules/.bin/bun src/image/assemble.ts --sysroot /sysroot --arch "${TARGETARCH}" --out /rootfs

# ---- the image ------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG VERSION=dev
ARG VCS_REF=""
# One layer: /usr/local/bin/pod-gateway, the links /bin/client_init.sh, /bin/client_sidecar.sh,
# /bin/gateway_init.sh and /bin/gateway_sidecar.sh to it, the tools in /usr/sbin, their libraries
# in /usr/lib/<triplet>, iptables' extensions, /default_config and /config (the shipped
# settings.sh and nat.conf), /run. Only real directories, so it merges into the base's tree.
COPY --from=rootfs /rootfs/ /
LABEL org.opencontainers.image.title="pod-gateway" \
      org.opencontainers.image.description="Routes Kubernetes pods' traffic through a gateway pod over VXLAN; drop-in for the pod-gateway scripts" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
# The roles change the pod's network: they run as root with NET_ADMIN (and NET_RAW).
USER 0:0
# No ENTRYPOINT, so a pod's `command: [/bin/client_init.sh]` (what the chart and webhook set) and
# `args` alone both work as they did with the scripts' image.
CMD ["/usr/local/bin/pod-gateway", "--help"]
