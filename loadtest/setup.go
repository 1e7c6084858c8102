package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// AdminTokenEnv is the environment variable that holds the admin token, as
// the server reads it.
const AdminTokenEnv = "PAYMENTS_ADMIN_TOKEN"

// ResolveAdminToken answers flagValue when set, else $PAYMENTS_ADMIN_TOKEN,
// else the trimmed content of file (where `make run` keeps its token).
func ResolveAdminToken(flagValue, file string) (string, error) {
	return resolveAdminToken(flagValue, file, os.Getenv)
}

func resolveAdminToken(flagValue, file string, getenv func(string) string) (string, error) {
	if t := strings.TrimSpace(flagValue); t != "" {
		return t, nil
	}
	if t := strings.TrimSpace(getenv(AdminTokenEnv)); t != "" {
		return t, nil
	}
	if file == "" {
		return "", fmt.Errorf("admin token: neither -admin-token nor $%s is set", AdminTokenEnv)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("admin token: neither -admin-token nor $%s is set, and %w", AdminTokenEnv, err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("admin token: %s is empty", file)
	}
	return t, nil
}

// Tenant is one tenant that the run created.
type Tenant struct {
	ID     string
	Secret string
}

// tenantCreated is the part of the admin API's answer that the run needs:
// {"account": {"id": ...}, "api_key": {"secret": ...}}. A top-level
// "secret" is accepted too.
type tenantCreated struct {
	Account struct {
		ID string `json:"id"`
	} `json:"account"`
	APIKey struct {
		Secret string `json:"secret"`
	} `json:"api_key"`
	Secret string `json:"secret"`
}

// setupAttemptsMax retries a tenant creation that met a 429, a 5xx or a
// transport error; a duplicate tenant after an ambiguous failure is
// harmless here.
const setupAttemptsMax = 3

// CreateTenants creates n tenants with the server's default limits,
// concurrency at a time, named prefix-<i>.
func CreateTenants(ctx context.Context, c *http.Client, base, adminToken, region, prefix string, n, concurrency int) ([]Tenant, error) {
	tenants := make([]Tenant, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	next := make(chan int)
	for range max(1, min(concurrency, n)) {
		wg.Go(func() {
			for i := range next {
				t, err := createTenant(ctx, c, base, adminToken, region, fmt.Sprintf("%s-%d", prefix, i))
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("create tenant %d of %d: %w", i+1, n, err)
						cancel()
					}
					mu.Unlock()
					continue
				}
				tenants[i] = t
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create tenants: %w", err)
	}
	return tenants, nil
}

func createTenant(ctx context.Context, c *http.Client, base, adminToken, region, name string) (Tenant, error) {
	body, err := json.Marshal(map[string]string{"name": name, "region": region})
	if err != nil {
		return Tenant{}, err
	}
	var lastErr error
	for attempt := range setupAttemptsMax {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			case <-ctx.Done():
				return Tenant{}, ctx.Err()
			}
		}
		t, retry, err := createTenantOnce(ctx, c, base, adminToken, body)
		if err == nil {
			return t, nil
		}
		if !retry || ctx.Err() != nil {
			return Tenant{}, err
		}
		lastErr = err
	}
	return Tenant{}, lastErr
}

func createTenantOnce(ctx context.Context, c *http.Client, base, adminToken string, body []byte) (t Tenant, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/admin/tenants", bytes.NewReader(body))
	if err != nil {
		return Tenant{}, false, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return Tenant{}, true, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Tenant{}, true, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = fmt.Sprintf(" (is the admin token the server's $%s?)", AdminTokenEnv)
		}
		return Tenant{}, retry, fmt.Errorf("POST /v1/admin/tenants: %s%s: %s", resp.Status, hint, snippet(b))
	}
	var tc tenantCreated
	if err := json.Unmarshal(b, &tc); err != nil {
		return Tenant{}, false, fmt.Errorf("decode answer: %w", err)
	}
	secret := tc.APIKey.Secret
	if secret == "" {
		secret = tc.Secret
	}
	if secret == "" {
		return Tenant{}, false, errors.New("answer has no api_key.secret")
	}
	return Tenant{ID: tc.Account.ID, Secret: secret}, false, nil
}

// snippet shortens an answer body for an error message.
func snippet(b []byte) string {
	const n = 300
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
