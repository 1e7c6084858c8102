package webhooks

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/payments-api/payments/errcode"
)

// fakeResolver answers fixed addresses per name; unknown names do not
// resolve.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := f[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

var testResolver = fakeResolver{
	"hooks.example.com":    {"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"},
	"internal.example.com": {"10.0.0.7"},
	"mixed.example.com":    {"93.184.216.34", "127.0.0.1"},
	"metadata.example.com": {"169.254.169.254"},
	"mapped.example.com":   {"::ffff:192.168.0.1"},
	"cgnat.example.com":    {"100.100.100.100"},
}

func TestForbidden(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.0.1",
		"100.64.0.1", "100.127.255.255", "169.254.169.254", "169.254.0.1", "224.0.0.1", "239.255.255.250",
		"0.0.0.0", "0.1.2.3", "255.255.255.255", "240.0.0.1", "192.0.0.8", "192.0.2.1", "198.18.0.1", "198.51.100.1", "203.0.113.1",
		"::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "ff05::2", "fec0::1", "2001:db8::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:100.64.0.1", "::127.0.0.1", "::10.0.0.1",
		"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "2002:7f00:1::1", "2002:a9fe:a9fe::1", "2001::1", "100::1",
		"fe80::1%eth0",
	} {
		if !Forbidden(netip.MustParseAddr(s)) {
			t.Errorf("Forbidden(%s) = false", s)
		}
	}
	for _, s := range []string{
		"93.184.216.34", "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.15.255.255", "172.32.0.1", "169.253.255.255",
		"2606:2800:220:1:248:1893:25c8:1946", "2a00:1450:4001:82b::200e", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8",
	} {
		if Forbidden(netip.MustParseAddr(s)) {
			t.Errorf("Forbidden(%s) = true", s)
		}
	}
	if !Forbidden(netip.Addr{}) {
		t.Error("the zero address is not forbidden")
	}
}

func codeOf(err error) string {
	if e := errcode.As(err); e != nil {
		return e.Code
	}
	return ""
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	g := &Guard{Resolver: testResolver}
	ctx := context.Background()
	for raw, want := range map[string]string{
		"https://hooks.example.com/webhooks":             "",
		"https://HOOKS.example.com:8443/w?x=1":           "",
		"https://93.184.216.34/w":                        "",
		"https://[2606:2800:220:1:248:1893:25c8:1946]/w": "",
		"https://hooks.example.com./w":                   "",
		"http://hooks.example.com/w":                     CodeURLInvalid,
		"HTTP://hooks.example.com/w":                     CodeURLInvalid,
		"ftp://hooks.example.com/w":                      CodeURLInvalid,
		"https://user@hooks.example.com/w":               CodeURLInvalid,
		"https://user:pw@hooks.example.com/w":            CodeURLInvalid,
		"https://hooks.example.com/w#frag":               CodeURLInvalid,
		"https:///w":                                     CodeURLInvalid,
		"https://hooks.example.com:0/w":                  CodeURLInvalid,
		"https://hooks.example.com:65536/w":              CodeURLInvalid,
		"https://hooks.example.com:/w":                   CodeURLInvalid,
		"//hooks.example.com/w":                          CodeURLInvalid,
		"hooks.example.com/w":                            CodeURLInvalid,
		"https://hoöks.example.com/w":                    CodeURLInvalid,
		"https://-bad.example.com/w":                     CodeURLInvalid,
		"https://a..b/w":                                 CodeURLInvalid,
		"https://nowhere.example.com/w":                  CodeURLInvalid,
		"https://[fe80::1%25eth0]/w":                     CodeURLInvalid,
		"https://%31%32%37.0.0.1/w":                      CodeURLInvalid,
		"https://internal.example.com/w":                 CodeURLNotAllowed,
		"https://mixed.example.com/w":                    CodeURLNotAllowed,
		"https://metadata.example.com/w":                 CodeURLNotAllowed,
		"https://mapped.example.com/w":                   CodeURLNotAllowed,
		"https://cgnat.example.com/w":                    CodeURLNotAllowed,
		"https://localhost/w":                            CodeURLNotAllowed,
		"https://LOCALHOST./w":                           CodeURLNotAllowed,
		"https://api.localhost/w":                        CodeURLNotAllowed,
		"https://127.0.0.1/w":                            CodeURLNotAllowed,
		"https://127.0.0.1./w":                           CodeURLNotAllowed,
		"https://2130706433/w":                           CodeURLNotAllowed,
		"https://0x7f000001/w":                           CodeURLNotAllowed,
		"https://0X7F000001/w":                           CodeURLNotAllowed,
		"https://0177.0.0.1/w":                           CodeURLNotAllowed,
		"https://0177.0000.0000.0001/w":                  CodeURLNotAllowed,
		"https://127.1/w":                                CodeURLNotAllowed,
		"https://127.0.1/w":                              CodeURLNotAllowed,
		"https://0x7f.1/w":                               CodeURLNotAllowed,
		"https://0/w":                                    CodeURLNotAllowed,
		"https://0x/w":                                   CodeURLNotAllowed,
		"https://1.2.3.04/w":                             CodeURLNotAllowed,
		"https://93.184.216.034/w":                       CodeURLNotAllowed, // public, but not canonical
		"https://1572395042/w":                           CodeURLNotAllowed, // 93.184.216.34 as a decimal
		"https://example.123/w":                          CodeURLNotAllowed,
		"https://169.254.169.254/latest/meta-data":       CodeURLNotAllowed,
		"https://[::ffff:169.254.169.254]/w":             CodeURLNotAllowed,
		"https://[::ffff:a9fe:a9fe]/w":                   CodeURLNotAllowed,
		"https://[0:0:0:0:0:ffff:7f00:1]/w":              CodeURLNotAllowed,
		"https://[::127.0.0.1]/w":                        CodeURLNotAllowed,
		"https://[64:ff9b::a9fe:a9fe]/w":                 CodeURLNotAllowed,
		"https://[2002:a9fe:a9fe::]/w":                   CodeURLNotAllowed,
		"https://[ff02::1]/w":                            CodeURLNotAllowed,
		"https://100.64.0.1/w":                           CodeURLNotAllowed,
		"https://224.0.0.251/w":                          CodeURLNotAllowed,
		"https://0.0.0.0/w":                              CodeURLNotAllowed,
		"https://[::]/w":                                 CodeURLNotAllowed,
		"https://" + strings.Repeat("a", 2048) + "/":     CodeURLInvalid,
	} {
		_, err := g.CheckURL(ctx, raw)
		if got := codeOf(err); got != want {
			t.Errorf("CheckURL(%q): code %q (%v), want %q", raw, got, err, want)
		}
		if err != nil && codeOf(err) == "" {
			t.Errorf("CheckURL(%q): error without a code: %v", raw, err)
		}
	}
}

func TestAllowPrivateNetworks(t *testing.T) {
	t.Parallel()
	g := &Guard{AllowPrivateNetworks: true, Resolver: fakeResolver{}}
	ctx := context.Background()
	for _, raw := range []string{"http://127.0.0.1:8080/hooks", "https://localhost/w", "http://10.0.0.1/w", "http://[::1]:9000/w", "http://receiver/w"} {
		if _, err := g.CheckURL(ctx, raw); err != nil {
			t.Errorf("allowed: CheckURL(%q): %v", raw, err)
		}
	}
	// The flag lifts the address rule, not the spelling rules.
	for _, raw := range []string{"http://user:pw@127.0.0.1/w", "http://2130706433/w", "http://0x7f000001/w", "ftp://127.0.0.1/w"} {
		if _, err := g.CheckURL(ctx, raw); err == nil {
			t.Errorf("allowed: CheckURL(%q) accepted", raw)
		}
	}
	if err := g.Control("tcp4", "127.0.0.1:80", nil); err != nil {
		t.Errorf("allowed: Control refused loopback: %v", err)
	}
}

func TestControlRefusesForbiddenAddresses(t *testing.T) {
	t.Parallel()
	g := &Guard{}
	for _, addr := range []string{
		"127.0.0.1:443", "[::1]:443", "10.0.0.1:443", "169.254.169.254:80", "100.64.0.1:443", "[::ffff:127.0.0.1]:443",
		"[fe80::1%eth0]:443", "224.0.0.1:443", "0.0.0.0:443", "[::]:443", "[64:ff9b::7f00:1]:443",
	} {
		network := "tcp4"
		if strings.HasPrefix(addr, "[") {
			network = "tcp6"
		}
		if err := g.Control(network, addr, nil); !errors.Is(err, ErrAddressNotAllowed) {
			t.Errorf("Control(%s, %s) = %v, want ErrAddressNotAllowed", network, addr, err)
		}
	}
	if err := g.Control("udp4", "93.184.216.34:53", nil); !errors.Is(err, ErrAddressNotAllowed) {
		t.Errorf("Control(udp) = %v", err)
	}
	if err := g.Control("tcp4", "not-an-address:1", nil); !errors.Is(err, ErrAddressNotAllowed) {
		t.Errorf("Control(name) = %v", err)
	}
	if err := g.Control("tcp4", "93.184.216.34:443", nil); err != nil {
		t.Errorf("Control(public) = %v", err)
	}
}

// inetAton is an independent, lenient reading of a host as an IPv4 address
// the way inet_aton and WHATWG URL parsers read it: one to four parts, each
// decimal, octal (leading 0) or hex (0x), the last part filling the
// remaining bytes.
func inetAton(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(host, ".")
	parts := strings.Split(host, ".")
	if len(parts) == 0 || len(parts) > 4 {
		return netip.Addr{}, false
	}
	var nums []uint64
	for _, p := range parts {
		base, digits := 10, p
		switch {
		case strings.HasPrefix(strings.ToLower(p), "0x"):
			base, digits = 16, p[2:]
			if digits == "" {
				digits = "0"
			}
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		n, err := strconv.ParseUint(digits, base, 64)
		if err != nil || p == "" {
			return netip.Addr{}, false
		}
		nums = append(nums, n)
	}
	var v uint64
	for i, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
		v |= n << (8 * (3 - i))
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false
	}
	v |= last
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func TestInetAtonHelper(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]string{
		"2130706433": "127.0.0.1", "0x7f000001": "127.0.0.1", "0177.0.0.1": "127.0.0.1", "127.1": "127.0.0.1",
		"0x7f.1": "127.0.0.1", "127.0.0.1": "127.0.0.1", "0xa9fea9fe": "169.254.169.254",
	} {
		if a, ok := inetAton(host); !ok || a.String() != want {
			t.Errorf("inetAton(%s) = %v %v, want %s", host, a, ok, want)
		}
	}
}

// FuzzCheckURL: whatever the input, an accepted URL is https, carries no
// user information, and its host neither reads as a forbidden IPv4 address
// to a lenient parser nor is a forbidden IP literal nor resolves to one.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://hooks.example.com/w", "https://127.0.0.1/", "https://2130706433/", "https://0x7f.1/", "https://[::ffff:7f00:1]/",
		"https://user@hooks.example.com/", "http://hooks.example.com/", "https://%31%32%37.0.0.1/", "https://hooks.example.com:443/",
		"https://93.184.216.34./", "https://[fe80::1%25en0]/", "https://LOCALHOST/", "https://internal.example.com/",
	} {
		f.Add(s)
	}
	g := &Guard{Resolver: testResolver}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := g.CheckURL(context.Background(), raw)
		if err != nil {
			if codeOf(err) == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		u, perr := url.Parse(got)
		if perr != nil {
			t.Fatalf("accepted %q answers an unparsable %q", raw, got)
		}
		if u.Scheme != "https" || u.User != nil {
			t.Fatalf("accepted %q: scheme %q, user %v", raw, u.Scheme, u.User)
		}
		host := u.Hostname()
		if a, ok := inetAton(host); ok && Forbidden(a) {
			t.Fatalf("accepted %q whose host reads as %s", raw, a)
		}
		if a, err := netip.ParseAddr(host); err == nil && Forbidden(a) {
			t.Fatalf("accepted %q with the forbidden literal %s", raw, a)
		}
		if addrs, err := testResolver.LookupNetIP(context.Background(), "ip", strings.TrimSuffix(host, ".")); err == nil {
			for _, a := range addrs {
				if Forbidden(a) {
					t.Fatalf("accepted %q which resolves to %s", raw, a)
				}
			}
		}
	})
}
