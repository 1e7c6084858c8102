#!/usr/bin/env bash
# chart-check.sh checks the Helm chart in helm/payments: helm lint, then
# helm template with the default values and each helm/payments/ci file,
# validated by kubeconform -strict against Kubernetes' own schemas. It also
# builds the helm binary the Go tests in helm/ run, and ends with the k6
# scripts' type-check (scripts/k6-check.sh).
#
# Tools are built once into .dev/tools with `go install`. kubeconform's
# schemas would normally be downloaded; here they are generated, once, into
# .dev/kubeconform from OpenAPI documents that ship inside Go modules helm
# itself depends on, plus the Prometheus Operator's CRD, so no network but
# the Go module proxy is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

helm_version=v3.22.0
kubeconform_version=v0.8.0
# The k8s.io modules of helm v3.22.0; their OpenAPI documents describe the
# kinds the chart renders. Kubernetes 1.37 is what client-go v0.37 serves.
k8s_modules_version=v0.37.0
k8s_minor=37
prometheus_operator_version=v0.85.0

tools=$PWD/.dev/tools
schemas=.dev/kubeconform/schemas
chart=helm/payments
mkdir -p "$tools"
export HELM_CACHE_HOME=$PWD/.dev/helm/cache HELM_CONFIG_HOME=$PWD/.dev/helm/config HELM_DATA_HOME=$PWD/.dev/helm/data

# install NAME VERSION PACKAGE [go install flags]: builds when the stamp differs.
install() {
  local name=$1 version=$2 pkg=$3
  shift 3
  if [[ -x "$tools/$name" && "$(cat "$tools/$name.version" 2>/dev/null)" == "$version" ]]; then
    return
  fi
  echo "chart-check: building $name $version into .dev/tools (once)"
  GOBIN=$tools go install "$@" "$pkg@$version"
  echo "$version" >"$tools/$name.version"
}

# As helm's own release build does, so `helm template` assumes a current
# Kubernetes rather than the v1.20 fallback.
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
for pkg in pkg/lint/rules pkg/chartutil; do
  helm_ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
done
install helm "$helm_version" helm.sh/helm/v3/cmd/helm -trimpath -ldflags "$helm_ldflags"
install kubeconform "$kubeconform_version" github.com/yannh/kubeconform/cmd/kubeconform -trimpath

# module_dir MODULE@VERSION: the module's folder in the module cache. Run
# outside this module so go.mod and go.sum stay as they are.
module_dir() {
  local json tmp
  tmp=$(mktemp -d)
  json=$(cd "$tmp" && go mod download -json "$1")
  rmdir "$tmp"
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json"
}

stamp="$k8s_modules_version $prometheus_operator_version servicemonitors,prometheusrules $(cksum <helm/kubeschema/main.go)"
if [[ "$(cat "$schemas/.stamp" 2>/dev/null)" != "$stamp" ]]; then
  echo "chart-check: generating kubeconform schemas into $schemas (once)"
  cli_runtime=$(module_dir "k8s.io/cli-runtime@$k8s_modules_version")
  client_go=$(module_dir "k8s.io/client-go@$k8s_modules_version")
  prom=$(module_dir "github.com/prometheus-operator/prometheus-operator@$prometheus_operator_version")
  rm -rf "$schemas"
  # Later files win: the full Swagger document first, then the newer
  # per-group OpenAPI 3 documents of the kinds used most.
  go run ./helm/kubeschema -out "$schemas" \
    "$cli_runtime/artifacts/openapi/swagger.json" \
    "$client_go/openapi/openapitest/testdata/api__v1_openapi.json" \
    "$client_go/openapi/openapitest/testdata/apis__apps__v1_openapi.json" \
    "$client_go/openapi/openapitest/testdata/apis__batch__v1_openapi.json" \
    "$prom/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
    "$prom/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml"
  echo "$stamp" >"$schemas/.stamp"
fi

for values in "" "$chart"/ci/*.yaml; do
  args=()
  [[ -n "$values" ]] && args=(-f "$values")
  echo "chart-check: ${values:-default values}: helm lint, helm template | kubeconform -strict"
  "$tools/helm" lint --strict --quiet "$chart" ${args[@]+"${args[@]}"}
  "$tools/helm" template payments "$chart" ${args[@]+"${args[@]}"} |
    "$tools/kubeconform" -strict -summary -schema-location "$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json"
done

scripts/k6-check.sh
