package main

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/payments-api/payments/dbtest"
)

// chromiumPath is the headless browser of the docs test: PAYMENTS_TEST_CHROMIUM
// (scripts/test.sh installs Debian's chromium and sets it, so `make test`
// always runs the test), else chromium on PATH, else the test is skipped.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PAYMENTS_TEST_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("PAYMENTS_TEST_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium: `apt-get install chromium`, or run `make test`, which installs it")
	return ""
}

// offlineBrowser runs headless chromium with every address but the
// server's unreachable: all traffic goes to a proxy on a closed port, the
// server (loopback) bypasses it, and no name resolves. It records every
// request in a net log.
func offlineBrowser(t *testing.T, chromium, dir string, args ...string) []byte {
	t.Helper()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--hide-scrollbars",
		"--user-data-dir=" + filepath.Join(dir, "profile"),
		"--no-first-run", "--no-default-browser-check", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
		"--proxy-server=http://127.0.0.1:9",
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--window-size=1400,1000", "--virtual-time-budget=20000",
	}
	cmd := exec.Command(chromium, append(base, args...)...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// pageRequests reads a chromium net log and returns the URLs of the
// requests that the page at origin made (the browser's own background
// requests have no initiator and are left out).
func pageRequests(t *testing.T, netlog, origin string) []string {
	t.Helper()
	raw, err := os.ReadFile(netlog)
	if err != nil {
		t.Fatal(err)
	}
	var log struct {
		Constants struct {
			LogEventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int `json:"type"`
			Params struct {
				URL       string `json:"url"`
				Initiator string `json:"initiator"`
			} `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal(raw, &log); err != nil {
		t.Fatalf("net log: %v", err)
	}
	start, ok := log.Constants.LogEventTypes["URL_REQUEST_START_JOB"]
	if !ok {
		t.Fatal("net log has no URL_REQUEST_START_JOB event type")
	}
	var urls []string
	for _, e := range log.Events {
		if e.Type == start && e.Params.Initiator == origin {
			urls = append(urls, e.Params.URL)
		}
	}
	return urls
}

// TestDocsPageRendersOffline serves the real binary and opens /docs in
// headless chromium that can reach nothing but the server. Every operation
// of the served document must be rendered, and the page must have asked
// for nothing outside the server. The screenshot is kept in
// PAYMENTS_TEST_DOCS_SCREENSHOT when that is set.
func TestDocsPageRendersOffline(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "payments")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	env := append(os.Environ(),
		"DATABASE_URL="+dbtest.NewDatabase(t),
		"REDIS_URL="+dbtest.RedisURL(t),
		"PAYMENTS_REDIS_PREFIX="+dbtest.KeyPrefix(t),
		"PAYMENTS_ADMIN_TOKEN="+strings.Repeat("t", 40),
		"PAYMENTS_HTTP_ADDR="+addr,
	)
	_, _, base := startServe(t, bin, env, addr)

	res, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Summary string `json:"summary"`
		} `json:"paths"`
	}
	err = json.NewDecoder(res.Body).Decode(&doc)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var summaries []string
	for _, ops := range doc.Paths {
		for _, op := range ops {
			summaries = append(summaries, op.Summary)
		}
	}
	sort.Strings(summaries)
	if len(summaries) < 20 {
		t.Fatalf("the served document has %d operations", len(summaries))
	}

	netlog := filepath.Join(dir, "net.json")
	dom := string(offlineBrowser(t, chromium, dir, "--log-net-log="+netlog, "--dump-dom", base+"/docs"))
	var missing []string
	for _, s := range summaries {
		if !strings.Contains(dom, html.EscapeString(s)) && !strings.Contains(dom, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d operations are not rendered: %q (page: %d bytes)", len(missing), len(summaries), missing, len(dom))
	}

	requests := pageRequests(t, netlog, base)
	fetched := map[string]bool{}
	for _, u := range requests {
		p, err := url.Parse(u)
		if err != nil || p.Scheme+"://"+p.Host != base {
			t.Errorf("the page asked for %s, outside the server", u)
			continue
		}
		fetched[p.Path] = true
	}
	for _, want := range []string{"/docs/assets/redoc.standalone.js", "/docs/assets/docs.js", "/openapi.json"} {
		if !fetched[want] {
			t.Errorf("the page did not load %s from the server (it asked for %q)", want, requests)
		}
	}

	shot := os.Getenv("PAYMENTS_TEST_DOCS_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(dir, "docs.png")
	}
	offlineBrowser(t, chromium, dir, "--screenshot="+shot, base+"/docs")
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Errorf("screenshot %s: %v (%v)", shot, err, st)
	}
}
