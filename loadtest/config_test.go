package loadtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSteps(t *testing.T) {
	t.Parallel()
	got, err := ParseSteps(" 250:20s, 500:1m30s ,10000:100ms")
	if err != nil {
		t.Fatal(err)
	}
	want := []Step{{250, 20 * time.Second}, {500, 90 * time.Second}, {10000, 100 * time.Millisecond}}
	if len(got) != len(want) {
		t.Fatalf("ParseSteps = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d = %v, want %v", i, got[i], want[i])
		}
	}
	def, err := ParseSteps(StepsDefault)
	if err != nil || len(def) != 8 || def[7].Rate != 10000 {
		t.Errorf("ParseSteps(StepsDefault) = %v, %v", def, err)
	}
}

func TestParseStepsRefuses(t *testing.T) {
	t.Parallel()
	for in, wantInErr := range map[string]string{
		"":                "empty",
		"250":             "want RATE:DURATION",
		"250:20s,":        `step 2 ""`,
		"abc:20s":         "rate must be",
		"0:20s":           "rate must be",
		"-5:20s":          "rate must be",
		"2000000:1s":      "rate must be",
		"250:twenty":      "duration",
		"250:20":          "duration",
		"250:1ms":         "from 100ms",
		"250:2h":          "from 100ms",
		"250:20s;500:20s": "duration",
	} {
		_, err := ParseSteps(in)
		if err == nil {
			t.Errorf("ParseSteps(%q) = nil error, want one containing %q", in, wantInErr)
			continue
		}
		if !strings.Contains(err.Error(), wantInErr) || !strings.HasPrefix(err.Error(), "steps: ") {
			t.Errorf("ParseSteps(%q) = %q, want an error starting with steps: and containing %q", in, err, wantInErr)
		}
	}
}

func TestParseMix(t *testing.T) {
	t.Parallel()
	m, err := ParseMix("create=6, manual_capture=2,refund=1,get=1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Weight(FlowCreate) != 6 || m.Weight(FlowManualCapture) != 2 || m.Weight(FlowRefund) != 1 || m.Weight(FlowGet) != 1 || m.Total() != 10 {
		t.Errorf("ParseMix = %v", m)
	}
	if got := m.String(); got != "create=6,manual_capture=2,refund=1,get=1" {
		t.Errorf("String = %q", got)
	}
	m, err = ParseMix("get=1,create=0")
	if err != nil || m.Total() != 1 || m.String() != "get=1" {
		t.Errorf("ParseMix(get=1,create=0) = %v, %v", m, err)
	}
}

func TestParseMixRefuses(t *testing.T) {
	t.Parallel()
	for in, wantInErr := range map[string]string{
		"":                  "empty",
		"create":            "want FLOW=WEIGHT",
		"capture=1":         `unknown flow "capture"`,
		"create=-1":         "weight must be",
		"create=1.5":        "weight must be",
		"create=x":          "weight must be",
		"create=1001":       "weight must be",
		"create=1,create=2": "given twice",
		"create=0,get=0":    "every weight is 0",
	} {
		_, err := ParseMix(in)
		if err == nil {
			t.Errorf("ParseMix(%q) = nil error, want one containing %q", in, wantInErr)
			continue
		}
		if !strings.Contains(err.Error(), wantInErr) || !strings.HasPrefix(err.Error(), "mix: ") {
			t.Errorf("ParseMix(%q) = %q, want an error starting with mix: and containing %q", in, err, wantInErr)
		}
	}
}

func TestCheckBaseURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":    "http://127.0.0.1:8080",
		"http://127.9.8.7:1/":      "http://127.9.8.7:1",
		"http://localhost:8080/":   "http://localhost:8080",
		"http://LOCALHOST":         "http://LOCALHOST",
		"http://[::1]:8080":        "http://[::1]:8080",
		"https://127.0.0.1/prefix": "https://127.0.0.1/prefix",
	} {
		u, err := CheckBaseURL(in, false)
		if err != nil {
			t.Errorf("CheckBaseURL(%q) = %v", in, err)
			continue
		}
		if u.String() != want {
			t.Errorf("CheckBaseURL(%q) = %q, want %q", in, u, want)
		}
	}
}

func TestCheckBaseURLRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"http://10.0.0.1:8080", "http://192.168.1.10", "http://172.16.0.1", "http://8.8.8.8",
		"http://example.com", "http://localhost.example.com", "http://127.0.0.1.nip.io",
		"http://[::2]:8080", "http://0.0.0.0:8080", "http://[::]:8080",
	} {
		_, err := CheckBaseURL(in, false)
		if err == nil || !strings.Contains(err.Error(), "not a loopback address") || !strings.Contains(err.Error(), "-allow-remote") {
			t.Errorf("CheckBaseURL(%q) = %v, want a refusal naming -allow-remote", in, err)
		}
		if _, err := CheckBaseURL(in, true); err != nil {
			t.Errorf("CheckBaseURL(%q, allowRemote) = %v", in, err)
		}
	}
	for _, in := range []string{"ftp://127.0.0.1", "127.0.0.1:8080", "http://", "http://127.0.0.1/?x=1", "http://u:p@127.0.0.1", "http://127.0.0.1/#f"} {
		if _, err := CheckBaseURL(in, true); err == nil {
			t.Errorf("CheckBaseURL(%q) = nil error, want one", in)
		}
	}
}

func TestResolveAdminToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == AdminTokenEnv {
				return v
			}
			return ""
		}
	}
	for _, c := range []struct{ flag, env, file, want string }{
		{"from-flag", "from-env", file, "from-flag"},
		{"", "from-env", file, "from-env"},
		{"", "", file, "from-file"},
	} {
		got, err := resolveAdminToken(c.flag, c.file, env(c.env))
		if err != nil || got != c.want {
			t.Errorf("resolveAdminToken(%q, env %q) = %q, %v; want %q", c.flag, c.env, got, err, c.want)
		}
	}
	if _, err := resolveAdminToken("", filepath.Join(dir, "missing"), env("")); err == nil || !strings.Contains(err.Error(), AdminTokenEnv) {
		t.Errorf("missing token file: %v, want an error naming %s", err, AdminTokenEnv)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveAdminToken("", empty, env("")); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty token file: %v, want an error", err)
	}
}
