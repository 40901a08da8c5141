# syntax=docker/dockerfile:1
# Tally's image: a static binary (no cgo: the SQLite driver is pure Go) on distroless,
# run as a non-root user, with no shell. README "Production" says how to run it;
# deploy/deploy_test.go builds the binary with this file's flags and checks the result.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# Only the packages the binary is built from (deploy_test checks the list is complete).
COPY app/ app/
COPY cmd/ cmd/
COPY config/ config/
COPY migrations/ migrations/
COPY postbacks/ postbacks/
COPY rewards/ rewards/
COPY store/ store/
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/tally ./cmd/tally
# The working directory of the default SQLite URL (sqlite://data/tally.db), writable by
# the non-root user; with Postgres nothing is written to disk.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tally /tally
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /
USER 65532:65532
EXPOSE 8080
ENV TALLY_LISTEN=:8080
# No HEALTHCHECK: the image has no shell or HTTP client to run one. Probe from outside:
# liveness GET /healthz, readiness GET /readyz (README "Production").
ENTRYPOINT ["/tally"]
CMD ["serve", "--config", "/etc/tally/tally.yaml"]
