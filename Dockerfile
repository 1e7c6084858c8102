# syntax=docker/dockerfile:1
# The payments binary on distroless: no shell, no package manager, a
# numeric non-root user. Build: docker build -t payments:dev .

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so a code change reuses the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.1.0-dev
# Static, so it runs on an image without libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /payments ./cmd/payments

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /payments /payments
# Numeric, so the kubelet can verify runAsNonRoot.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/payments"]
CMD ["serve"]
