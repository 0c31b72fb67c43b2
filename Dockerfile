# trialrules image: the server and the CLI with their shared libraries only,
# on Debian bookworm, as a non-root user; runs with a read-only root file
# system (it writes nothing but its audit log, its checkpoints and its rule
# archive, which the manifests put on a volume per replica, or the audit log
# alone to stdout, as this CMD does). Build: docker build -t trialrules:0.1.0 .
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/collect-runtime.sh scripts/
RUN bash scripts/install-deps.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt ./
COPY proto proto
COPY service service
COPY client client
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DTRIALRULES_BUILD_TESTS=OFF -DTRIALRULES_BUILD_BENCHMARKS=OFF \
 && cmake --build build -j "$(nproc)" --target trialrules-server trialrules \
 && strip --strip-debug build/service/trialrules-server build/client/trialrules \
 && bash scripts/collect-runtime.sh build/service/trialrules-server build/client/trialrules /out

FROM debian:bookworm-slim
COPY --from=build /out/ /
RUN ldconfig && useradd --system --uid 10001 --user-group --no-create-home trialrules
COPY rules /etc/trialrules/rules
USER 10001:10001
EXPOSE 50051 9464
ENTRYPOINT ["/usr/local/bin/trialrules-server"]
CMD ["--listen=0.0.0.0:50051", "--plaintext", "--metrics-address=:9464", \
     "--rules-dir=/etc/trialrules/rules", "--audit-log=-"]
