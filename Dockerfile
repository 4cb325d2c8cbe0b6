# syntax=docker/dockerfile:1
#
# zxmigrate runner image: one static binary (CGO_ENABLED=0, -trimpath) on
# distroless/static, which carries the CA certificates, /etc/passwd with the
# nonroot user (65532) and tzdata, and no shell or package manager.
#
#   docker build -t zxmigrate:dev --build-arg VERSION=v0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
#   docker run --rm zxmigrate:dev version
#
# deploy/kubernetes runs it as a Job of runner pods; docs/scale-out.md is the
# runbook. The Go version here follows the go directive of go.mod
# (deploy/manifests_test.go checks it).

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so that a source change reuses the download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=""
ARG REVISION=""
# The build context has no .git (.dockerignore): the version and revision
# come from the build arguments instead of Go's VCS stamping.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/migrate ./cmd/migrate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/migrate /usr/local/bin/migrate
# 65532 is distroless's nonroot user; numeric, so that Kubernetes can prove
# runAsNonRoot without reading /etc/passwd.
USER 65532:65532
WORKDIR /var/lib/zxmigrate
ENTRYPOINT ["/usr/local/bin/migrate"]
CMD ["--help"]
