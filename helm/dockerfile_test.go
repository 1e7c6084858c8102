package helm_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// No Docker here, so the Dockerfile is read, not built: these are the
// properties the chart's securityContext relies on.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	type stage struct {
		from  string
		lines []string
	}
	var stages []stage
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "\\\n", " "), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		word, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(word) {
		case "FROM":
			stages = append(stages, stage{from: strings.Fields(rest)[0]})
		default:
			if len(stages) == 0 {
				t.Fatalf("%q before the first FROM", line)
			}
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a final one", len(stages))
	}
	build := strings.Join(stages[0].lines, "\n")
	for _, want := range []string{"CGO_ENABLED=0", "go build", "-trimpath", "-o /payments", "./cmd/payments"} {
		if !strings.Contains(build, want) {
			t.Errorf("build stage lacks %q", want)
		}
	}

	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage FROM %s, want distroless static or scratch (no shell)", final.from)
	}
	if strings.HasPrefix(final.from, "gcr.io/distroless/") && !strings.Contains(final.from, "nonroot") {
		t.Errorf("final stage FROM %s, want a :nonroot distroless image", final.from)
	}
	user := ""
	for _, l := range final.lines {
		word, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(word) {
		case "USER":
			user = strings.TrimSpace(rest)
		case "RUN":
			t.Errorf("final stage runs %q: it has no shell to run it", l)
		case "ENTRYPOINT", "CMD":
			if !strings.HasPrefix(strings.TrimSpace(rest), "[") {
				t.Errorf("%q is in shell form, which needs /bin/sh", l)
			}
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("final stage USER %q, want a numeric non-root user (runAsNonRoot checks the number)", user)
	}

	ignore, err := os.ReadFile(filepath.Join("..", ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", ".dev"} {
		if !regexp.MustCompile(`(?m)^/?` + regexp.QuoteMeta(want) + `/?$`).Match(ignore) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}
