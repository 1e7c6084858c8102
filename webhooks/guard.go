package webhooks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/payments-api/payments/errcode"
)

// Limits of endpoint URLs and of the delivery client.
const (
	// URLLengthMax bounds an endpoint URL.
	URLLengthMax = 2048
	// ResolveTimeout bounds the name resolution of a registration check.
	ResolveTimeout = 5 * time.Second
	// ResponseHeaderBytesMax bounds the headers of a receiver's answer.
	ResponseHeaderBytesMax = 16 << 10
)

// Codes of URL refusals.
const (
	// CodeURLInvalid: the URL is malformed, not https, or carries a user
	// name, password or fragment.
	CodeURLInvalid = "url_invalid"
	// CodeURLNotAllowed: the URL names an address the service must not
	// call (loopback, private, link-local, ...), or spells an IP address in
	// a non-canonical form.
	CodeURLNotAllowed = "url_not_allowed"
)

// ErrAddressNotAllowed is the dial error for an address the guard refuses.
var ErrAddressNotAllowed = errors.New("address not allowed")

// Resolver resolves host names; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard decides which URLs an endpoint may have and which addresses the
// delivery client may connect to. Addresses are checked twice: at
// registration (after resolving the name) and when dialing, in the dialer's
// control hook, on the address actually connected to after resolution, so a
// name that later resolves elsewhere (DNS rebinding) is refused too.
type Guard struct {
	// AllowPrivateNetworks lifts the address rule and allows http, for
	// local development and tests only
	// (PAYMENTS_WEBHOOK_ALLOW_PRIVATE_NETWORKS).
	AllowPrivateNetworks bool
	// Resolver resolves names at registration; nil means net.DefaultResolver.
	Resolver Resolver
}

func urlInvalid(format string, args ...any) error {
	return errcode.Invalid(CodeURLInvalid, "url", format, args...)
}

func urlNotAllowed(format string, args ...any) error {
	return errcode.Invalid(CodeURLNotAllowed, "url", format, args...)
}

// CheckURL validates an endpoint URL at registration and answers it
// normalized. Errors: url_invalid, url_not_allowed (both 400, param url).
func (g *Guard) CheckURL(ctx context.Context, raw string) (string, error) {
	u, err := g.parse(raw)
	if err != nil {
		return "", err
	}
	if g.AllowPrivateNetworks {
		return u.String(), nil
	}
	host := u.Hostname()
	if addr, err := netip.ParseAddr(host); err == nil {
		if Forbidden(addr) {
			return "", urlNotAllowed("url points to a private, loopback or otherwise reserved address; use a public https URL")
		}
		return u.String(), nil
	}
	name := strings.TrimSuffix(host, ".")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return "", urlNotAllowed("url points to localhost; use a public https URL")
	}
	resolver := g.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	rctx, cancel := context.WithTimeout(ctx, ResolveTimeout)
	defer cancel()
	addrs, err := resolver.LookupNetIP(rctx, "ip", name)
	if err != nil || len(addrs) == 0 {
		return "", urlInvalid("the host of url could not be resolved")
	}
	for _, a := range addrs {
		if Forbidden(a) {
			return "", urlNotAllowed("the host of url resolves to a private, loopback or otherwise reserved address; use a public https URL")
		}
	}
	return u.String(), nil
}

// parse applies the rules that need no resolution: syntax, scheme, no user
// information or fragment, a well-formed host and port, and IP addresses
// only in their canonical spelling. The worker applies it again before each
// delivery.
func (g *Guard) parse(raw string) (*url.URL, error) {
	if len(raw) == 0 || len(raw) > URLLengthMax {
		return nil, urlInvalid("url must be 1 to %d characters", URLLengthMax)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return nil, urlInvalid("url must be an absolute URL such as https://example.com/webhooks")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && g.AllowPrivateNetworks:
	default:
		return nil, urlInvalid("url must use https")
	}
	if u.User != nil {
		return nil, urlInvalid("url must not contain a user name or password")
	}
	if u.Fragment != "" || u.RawFragment != "" || strings.Contains(raw, "#") {
		return nil, urlInvalid("url must not contain a fragment")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || p[0] == '0' {
			return nil, urlInvalid("the port of url must be 1 to 65535")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, urlInvalid("the port of url must be 1 to 65535")
	}
	if err := checkHost(u.Hostname()); err != nil {
		return nil, err
	}
	u.Host = strings.ToLower(u.Host)
	return u, nil
}

// checkHost accepts a DNS name of ASCII letters, digits, '-' and '_', a
// canonical dotted-quad IPv4 address, or an IPv6 address without a zone. It
// refuses every other spelling of an address that some resolver or browser
// would read as an IP (decimal 2130706433, hex 0x7f000001, octal 0177.0.0.1,
// short 127.1): such spellings have no legitimate use and exist to slip past
// filters.
func checkHost(host string) error {
	if host == "" {
		return urlInvalid("url must have a host")
	}
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return urlInvalid("the host of url is not a valid IPv6 address")
		}
		return nil
	}
	if len(host) > 253 {
		return urlInvalid("the host of url is too long")
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return urlInvalid("the host of url must be ASCII letters, digits, '-' and '.' (use the punycode form of an international name)")
		}
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if numericLabel(labels[len(labels)-1]) {
		// A host whose last label is a number is an IPv4 address to URL
		// parsers (WHATWG) and to inet_aton; only the canonical form is
		// accepted, so that what we check is what gets dialed.
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is4() {
			return urlNotAllowed("the host of url is an IP address in a non-canonical form; write it as four decimal numbers such as 203.0.113.7")
		}
		return nil
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return urlInvalid("the host of url is not a valid name")
		}
	}
	return nil
}

// numericLabel reports whether a label reads as a number to an IPv4 parser:
// decimal digits, or 0x followed by hex digits (octal is a decimal-looking
// label with a leading zero).
func numericLabel(l string) bool {
	if l == "" {
		return false
	}
	if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
		for i := 2; i < len(l); i++ {
			if !isHex(l[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// forbiddenPrefixes are special-purpose blocks (IANA registries) that the
// netip predicates in Forbidden do not cover.
var forbiddenPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network"
		"100.64.0.0/10",   // shared address space (carrier-grade NAT)
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"240.0.0.0/4",     // reserved, and the broadcast address
		"::/96",           // IPv4-compatible (deprecated), unspecified, loopback
		"64:ff9b:1::/48",  // local-use NAT64
		"100::/64",        // discard-only
		"2001::/23",       // IETF protocol assignments, Teredo
		"2001:db8::/32",   // documentation
		"3fff::/20",       // documentation
		"5f00::/16",       // segment routing SIDs
		"fec0::/10",       // site-local (deprecated)
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// Forbidden reports whether the delivery client must not connect to a: the
// loopback, private (RFC 1918, unique local), shared (100.64/10), link-local
// (including the cloud metadata address 169.254.169.254), multicast,
// unspecified, broadcast, documentation and other reserved ranges, and IPv6
// forms that embed such an IPv4 address (IPv4-mapped, IPv4-compatible,
// NAT64, 6to4).
func Forbidden(a netip.Addr) bool {
	if !a.IsValid() {
		return true
	}
	a = a.WithZone("").Unmap()
	if a.Is6() {
		var v4 [4]byte
		b := a.As16()
		switch {
		case nat64.Contains(a):
			copy(v4[:], b[12:16])
			return Forbidden(netip.AddrFrom4(v4))
		case sixTo4.Contains(a):
			copy(v4[:], b[2:6])
			if Forbidden(netip.AddrFrom4(v4)) {
				return true
			}
		}
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range forbiddenPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Control is the dialer's control hook: it runs after name resolution, on
// the address about to be connected, and refuses forbidden addresses unless
// private networks are allowed.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	if g.AllowPrivateNetworks {
		return nil
	}
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("dial %s %s: %w: only TCP is allowed", network, address, ErrAddressNotAllowed)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w: %v", address, ErrAddressNotAllowed, err)
	}
	if Forbidden(ap.Addr()) {
		return fmt.Errorf("dial %s: %w: private, loopback or reserved", address, ErrAddressNotAllowed)
	}
	return nil
}

// Client returns the HTTP client that delivers webhooks: every connection
// passes Control, no proxy is used (a proxy would connect on our behalf,
// past the check), redirects are not followed (a 3xx is a failed attempt),
// and each request is bounded by timeout.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: g.Control}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: ResponseHeaderBytesMax,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
