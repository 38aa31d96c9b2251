# syntax=docker/dockerfile:1
# RoboSim container image (docs/kubernetes.md). Three stages:
#   build    Swift 6.3 on Debian 12 (bookworm): scripts/setup.sh (Debian packages, .venv, MuJoCo from its wheel),
#            the README's first command in a check mode, then the products (release by default) staged in /staging
#   test     optional: the README's second command, the whole test suite (docker build --target test .)
#   runtime  the default target: debian:bookworm-slim with only the runtime libraries, the binaries, Scenes/,
#            a plugin folder, user 10001; ENTRYPOINT sim-server
# Build:  DOCKER_BUILDKIT=1 docker build -t robosim:dev .                       (BuildKit skips the test stage)
#         DOCKER_BUILDKIT=1 docker build --target test .                        (runs scripts/test.sh)
#         docker build --build-arg CONFIGURATION=debug -t robosim:debug .       (faster build, slower physics)
# scripts/check-container.sh checks this file (stages, user, no remote ADD) and that the runtime stage's
# apt list provides every shared library the binaries need (ldd + dpkg -S); CI runs it (scripts/test.sh).

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------------
FROM ${SWIFT_IMAGE} AS build
# release (default) or debug: the configuration of the products copied into the runtime image.
ARG CONFIGURATION=release
# The programs the runtime image carries (CONTRACT.md); scripts/check-container.sh reads this list.
ARG PRODUCTS="sim-server simctl sim-collect sim-train sim-strategist sim-deploy sim-bridge sim-mcp"
ENV DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# setup.sh's inputs first: the apt, venv and MuJoCo layers stay cached while the sources change.
COPY scripts/setup.sh scripts/setup.sh
COPY python/ python/
RUN scripts/setup.sh --no-build

COPY . .
# The README's first command (scripts/setup.sh && scripts/run.sh) in a check mode: setup builds the debug
# products, run.sh records 2 strategist episodes of Scenes/tbar_push (OSMesa cameras, AV1 through ffmpeg)
# and prints the dataset's summary; the dataset is then removed.
RUN scripts/setup.sh && scripts/run.sh 2 && rm -rf runs

# The products, their libraries beside them ($ORIGIN: libPluginAPI.so), and the Swift runtime libraries that
# ldd says they need (the runtime stage has no toolchain), staged for the runtime stage.
RUN swift build -c "$CONFIGURATION" \
 && bin=$(swift build -c "$CONFIGURATION" --show-bin-path) \
 && mkdir -p /staging/robosim/bin /staging/robosim/plugins /staging/swift-lib \
 && for p in $PRODUCTS; do install -m 0755 "$bin/$p" /staging/robosim/bin/; done \
 && find "$bin" -maxdepth 1 -name 'lib*.so' -exec install -m 0644 {} /staging/robosim/bin/ \; \
 && cp -r Scenes /staging/robosim/Scenes \
 && rm -rf /staging/robosim/Scenes/test \
 && ldd /staging/robosim/bin/* | awk '$3 ~ "/lib/swift/linux/" {print $3}' | sort -u \
      | xargs -r cp -L -t /staging/swift-lib \
 && ls /staging/swift-lib /staging/robosim/bin

# ---------------------------------------------------------------------------------------------------
# Optional: the README's second command, the whole suite, in the build stage's environment. Tests that need
# privileges a build step lacks (network namespaces for the fault tests) skip themselves there.
FROM build AS test
RUN scripts/test.sh

# ---------------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
# Runtime libraries only (scripts/check-container.sh maps every library the binaries load to one of these,
# or to what they pull in): libzmq5 (messaging, CURVE through libsodium), libcurl4 and libsqlite3-0
# (Foundation networking, sim-deploy's store), libosmesa6 (CPU rendering, dlopened), libegl1,
# libegl-mesa0 and libgl1-mesa-dri (EGL rendering, dlopened; NVIDIA's runtime adds its own EGL vendor),
# ffmpeg (the executable sim-collect and sim-train spawn for AV1/H.264 video), ca-certificates (HTTPS
# to LLM endpoints and Bedrock), tini (PID 1: reaps the sim-server children that sim-collect and sim-train start).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libzmq5 libcurl4 libsqlite3-0 libosmesa6 libegl1 libegl-mesa0 libgl1-mesa-dri ffmpeg ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*

# The Swift runtime (only the libraries ldd found) and MuJoCo's C library from its official wheel, both at
# the paths the build stage had (the binaries' RUNPATH names the Swift one; ldconfig finds both).
COPY --from=build /staging/swift-lib/ /usr/lib/swift/linux/
COPY --from=build /usr/local/lib/libmujoco.so* /usr/local/lib/
RUN echo /usr/lib/swift/linux > /etc/ld.so.conf.d/swift.conf && ldconfig

COPY --from=build /staging/robosim/ /opt/robosim/
ENV PATH=/opt/robosim/bin:$PATH \
    HOME=/home/robosim
# The user the image runs as (no login, no password); the programs must start with only these libraries.
RUN groupadd --system --gid 10001 robosim \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/robosim --create-home --shell /usr/sbin/nologin robosim \
 && for p in sim-server simctl sim-collect sim-train; do "$p" --help > /dev/null; done \
 && ffmpeg -hide_banner -encoders | grep -q libsvtav1
WORKDIR /opt/robosim
USER 10001:10001
# External plugin libraries go in /opt/robosim/plugins (a derived image or a volume): sim-server --plugin-path /opt/robosim/plugins.
# ROUTER 7700, XPUB 7701, XSUB 7702 (sim-server --listen tcp://0.0.0.0:7700); viewer when asked (--viewer 8765).
EXPOSE 7700 7701 7702
ENTRYPOINT ["/usr/bin/tini", "--", "sim-server"]
CMD ["Scenes/tbar_push"]
