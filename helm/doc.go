// Package helm holds the tests of the Helm chart in helm/payments and of the
// Dockerfile its default image is built from. scripts/chart-check.sh builds
// the helm binary the tests run into .dev/tools.
package helm
