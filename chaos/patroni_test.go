package chaos

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	flagPatroni     = flag.Bool("chaos.patroni", false, "run the Patroni failover scenario (make chaos sets it; it needs Debian's patroni and etcd-server, which scripts/patroni.sh installs)")
	flagPatroniLoad = flag.Duration("chaos.patroni.load", 40*time.Second, "how long the Patroni scenario's clients write, the primary being killed a quarter in")
	flagPatroniOut  = flag.String("chaos.patroni.report", "", "also write the Patroni scenario's figures to this file")
)

// patroniMembers is the size of the cluster scripts/patroni.sh starts.
const patroniMembers = 3

// TestPatroniFailover runs `payments serve` against three PostgreSQL
// members under Patroni (three etcd members keep the cluster state by
// Raft) with synchronous replication, through a multi-host DATABASE_URL
// with target_session_attrs=read-write; under load it SIGKILLs one etcd
// member, then the primary member (Patroni and its PostgreSQL, as a lost
// machine), and checks that a synchronous standby took over, the API found
// it, and every acknowledged payment is there exactly once. It records the
// time without writes. `make chaos` runs it; `make test` does not (it needs
// the patroni packages and about a minute and a half).
func TestPatroniFailover(t *testing.T) {
	if !*flagPatroni {
		t.Skip("the Patroni failover scenario runs with -chaos.patroni (make chaos)")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "scripts", "patroni.sh")
	cred, err := postgresUser()
	if err != nil {
		t.Fatal(err)
	}
	dir := privateDir(t, cred)
	base := patroniBasePort(t)
	sh := func(args ...string) (string, error) {
		out, err := exec.Command(script, append(args, dir, strconv.Itoa(base))...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	t.Cleanup(func() {
		if out, err := sh("down"); err != nil {
			t.Logf("patroni.sh down: %v\n%s", err, out)
		}
	})
	began := time.Now()
	if out, err := sh("up"); err != nil {
		t.Fatalf("patroni.sh up: %v\n%s\n%s", err, out, tailFiles(dir, "m?.log", "etcd?.log"))
	}
	t.Logf("cluster up in %.1fs", time.Since(began).Seconds())
	dsn, err := sh("dsn")
	if err != nil {
		t.Fatal(err)
	}

	bin := buildBinary(t)
	if err := migrate(bin, dsn); err != nil {
		t.Fatal(err)
	}
	redisPort := freePort(t)
	newRedis(t, redisPort)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	api := &proc{name: "serve", argv: []string{bin, "serve"}, log: &syncBuffer{}, env: envWith(os.Environ(),
		"DATABASE_URL="+dsn, "REDIS_URL="+fmt.Sprintf("redis://127.0.0.1:%d/0", redisPort),
		"PAYMENTS_ADMIN_TOKEN="+adminToken, "PAYMENTS_HTTP_ADDR="+addr, "PAYMENTS_RATE_LIMIT_PER_SECOND=100000",
		"PAYMENTS_LOG_LEVEL=warn", "PAYMENTS_DB_CONNS_MAX=16", "STRIPE_SECRET_KEY=", "PAYMENTS_TEST_CLOCK_OFFSET_MS=", "GOGC=")}
	if err := api.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.kill(syscall.SIGTERM) })
	if err := waitHTTP(api, addr); err != nil {
		t.Fatal(err)
	}
	h := &harness{apiAddrs: []string{addr}}
	var created struct {
		APIKey struct {
			Secret string `json:"secret"`
		} `json:"api_key"`
	}
	if err := postJSON("http://"+addr+"/v1/admin/tenants", adminToken, `{"name":"Failover","region":"local"}`, &created); err != nil {
		t.Fatal(err)
	}

	hist := &history{}
	load := *flagPatroniLoad
	w := &workload{apis: h.bases, tenants: []tenant{{Secret: created.APIKey.Secret}}, hist: hist,
		giveUp: time.Now().Add(load + 90*time.Second), http: &http.Client{Timeout: clientTimeout}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const clients = 16
	for i := range clients {
		c := &client{w: w, id: i, rnd: rand.New(rand.NewPCG(uint64(i), 7))}
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("f%d-%d", c.id, n)
				body := fmt.Sprintf(`{"amount":%d,"currency":"usd","payment_method":"pm_card_visa","metadata":{"chaos_key":%q}}`, 100+c.rnd.IntN(5000), key)
				c.do(ctx, 0, OpCreate, key+"-create", "POST", "/v1/payments", body, 0)
			}
		})
	}

	time.Sleep(load / 4)
	leader, err := patroniLeader(base)
	if err != nil {
		t.Fatal(err)
	}
	patroniPID, pgPID := pidFile(filepath.Join(dir, fmt.Sprintf("m%d.pid", leader))), pidFile(filepath.Join(dir, fmt.Sprintf("m%d", leader), "data", "postmaster.pid"))
	if patroniPID == 0 || pgPID == 0 {
		t.Fatalf("no pids for leader m%d (patroni %d, postgres %d)", leader, patroniPID, pgPID)
	}
	// etcd keeps the cluster state by Raft over three members: with one of
	// them dead, the other two still elect and hold the leader key.
	etcdPID := pidFile(filepath.Join(dir, "etcd2.pid"))
	if etcdPID == 0 {
		t.Fatal("no pid for etcd member e2")
	}
	_ = syscall.Kill(etcdPID, syscall.SIGKILL)
	t.Logf("SIGKILL of etcd member e2 (%d) at %.1fs: two of three members remain", etcdPID, time.Since(began).Seconds())
	killedAt := time.Now()
	_ = syscall.Kill(patroniPID, syscall.SIGKILL)
	_ = syscall.Kill(pgPID, syscall.SIGKILL)
	t.Logf("SIGKILL of the primary m%d (patroni %d, postgres %d) at %.1fs", leader, patroniPID, pgPID, killedAt.Sub(began).Seconds())
	var promotedAt time.Time
	newLeader := -1
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if l, err := patroniLeader(base); err == nil && l != leader {
			newLeader, promotedAt = l, time.Now()
			break
		}
	}
	if newLeader < 0 {
		t.Fatalf("no member was promoted within 60 s:\n%s", tailFiles(dir, "m?.log"))
	}
	time.Sleep(time.Until(killedAt.Add(load * 3 / 4)))
	stoppedAt := time.Now()
	close(stop)
	wg.Wait()

	// The checker: every acknowledged payment is on the new primary, once.
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	stored := map[string][]string{}
	rows, err := pool.Query(ctx, `SELECT metadata->>'chaos_key', id::TEXT FROM payments`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k, id string
		if err := rows.Scan(&k, &id); err != nil {
			t.Fatal(err)
		}
		stored[k] = append(stored[k], id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var acked, lost, doubled, unknown, unresolved, leased int
	var firstNew time.Time // the first acknowledged create whose first attempt started after the kill
	var ackEnds []time.Time
	var firstAfter time.Time
	for _, o := range hist.all() {
		key := strings.TrimSuffix(o.Key, "-create")
		if len(stored[key]) > 1 {
			doubled++
			t.Errorf("key %s holds %d payments", key, len(stored[key]))
		}
		if o.Unknowns() > 0 {
			unknown++
		}
		for _, a := range o.Attempts {
			if a.Status == http.StatusConflict {
				leased++
			}
		}
		if o.Outcome == OutcomeUnknown {
			unresolved++
			continue
		}
		var ans struct {
			ID string `json:"id"`
		}
		if o.Outcome != OutcomeOK || json.Unmarshal(o.Body, &ans) != nil || ans.ID == "" {
			continue
		}
		acked++
		if o.End().Before(stoppedAt) {
			ackEnds = append(ackEnds, o.End()) // the drain's stragglers are no gap in service
		}
		if last := o.Attempts[len(o.Attempts)-1]; last.Start.After(killedAt) && (firstAfter.IsZero() || o.End().Before(firstAfter)) {
			firstAfter = o.End()
		}
		if o.Attempts[0].Start.After(killedAt) && (firstNew.IsZero() || o.End().Before(firstNew)) {
			firstNew = o.End()
		}
		if len(stored[key]) == 0 || !samePayment(ans.ID, stored[key][0]) {
			lost++
			t.Errorf("create %s was answered %s but the new primary holds %v", o.Key, ans.ID, stored[key])
		}
	}
	sort.Slice(ackEnds, func(i, j int) bool { return ackEnds[i].Before(ackEnds[j]) })
	// The longest stretch without an acknowledgement, and where it began.
	var gap time.Duration
	var gapFrom time.Time
	for i := 1; i < len(ackEnds); i++ {
		if d := ackEnds[i].Sub(ackEnds[i-1]); d > gap {
			gap, gapFrom = d, ackEnds[i-1]
		}
	}
	after, _ := patroniCluster(base)
	// The lost member comes back as a standby of the new primary.
	rejoined := "no"
	if out, err := exec.Command(script, "member", dir, strconv.Itoa(base), strconv.Itoa(leader)).CombinedOutput(); err != nil {
		t.Errorf("restart m%d: %v\n%s", leader, err, out)
	} else if out, err := exec.Command(script, "wait", dir, strconv.Itoa(base)).CombinedOutput(); err != nil {
		t.Errorf("m%d did not rejoin: %v\n%s\n%s", leader, err, out, tailFiles(dir, fmt.Sprintf("m%d.log", leader)))
	} else {
		rejoined, _ = patroniCluster(base)
	}
	var noWrites time.Duration = -1
	if !firstAfter.IsZero() {
		noWrites = firstAfter.Sub(killedAt)
	}
	report := fmt.Sprintf(`| figure | value |
| --- | --- |
| clients | %d, for %s |
| acknowledged creates | %d |
| creates with an unknown attempt | %d (%d unresolved) |
| lost | %d |
| doubled | %d |
| primary killed | m%d at %.1fs |
| new primary | m%d, %.1fs after the kill |
| time without writes: kill to the first acknowledged attempt sent after it | %.1fs |
| kill to the first acknowledged new create (first attempt after the kill) | %.1fs |
| longest gap between two acknowledgements under load | %.1fs, from %+.1fs of the kill |
| 409 answers (a retry finding its key still leased) | %d |
| cluster after the failover | %s |
| cluster after restarting the lost member | %s |
`, clients, load, acked, unknown, unresolved, lost, doubled, leader, killedAt.Sub(began).Seconds(), newLeader, promotedAt.Sub(killedAt).Seconds(),
		noWrites.Seconds(), firstNew.Sub(killedAt).Seconds(), gap.Seconds(), gapFrom.Sub(killedAt).Seconds(), leased, after, rejoined)
	t.Log("\n" + report)
	if *flagHistory != "" {
		if b, err := json.MarshalIndent(hist.all(), "", " "); err == nil {
			_ = os.WriteFile(*flagHistory+".patroni.json", b, 0o644)
		}
	}
	if *flagPatroniOut != "" {
		if err := os.WriteFile(*flagPatroniOut, []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
	if acked == 0 || firstAfter.IsZero() {
		t.Errorf("no payment acknowledged after the failover (%d before): the API did not reconnect\n%s", acked, api.log.Tail())
	}
	if unresolved > 0 {
		t.Errorf("%d creates still unknown after their retries", unresolved)
	}
}

// patroniBasePort finds a base with its 23 loopback ports free.
func patroniBasePort(tb testing.TB) int {
	tb.Helper()
	for range 50 {
		base := 30000 + rand.IntN(20000)
		free := true
		for _, off := range []int{0, 1, 2, 3, 4, 5, 10, 11, 12, 20, 21, 22} {
			if portOpen(base + off) {
				free = false
				break
			}
		}
		if free {
			return base
		}
	}
	tb.Fatal("no free ports for the Patroni cluster")
	return 0
}

// patroniLeader asks each member's REST API which one is the primary.
func patroniLeader(base int) (int, error) {
	c := &http.Client{Timeout: time.Second}
	for i := range patroniMembers {
		res, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/primary", base+20+i))
		if err != nil {
			continue
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no member answers as primary")
}

// patroniCluster describes the members' roles and states.
func patroniCluster(base int) (string, error) {
	c := &http.Client{Timeout: time.Second}
	for i := range patroniMembers {
		res, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/cluster", base+20+i))
		if err != nil {
			continue
		}
		var cl struct {
			Members []struct {
				Name, Role, State string
				Lag               any
			}
		}
		err = json.NewDecoder(res.Body).Decode(&cl)
		res.Body.Close()
		if err != nil {
			continue
		}
		var parts []string
		for _, m := range cl.Members {
			parts = append(parts, fmt.Sprintf("%s %s %s", m.Name, m.Role, m.State))
		}
		return strings.Join(parts, ", "), nil
	}
	return "", fmt.Errorf("no member answers")
}

func pidFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	n, _ := strconv.Atoi(strings.TrimSpace(line))
	return n
}

// tailFiles quotes the ends of the logs matching the patterns in dir.
func tailFiles(dir string, patterns ...string) string {
	var b strings.Builder
	for _, p := range patterns {
		files, _ := filepath.Glob(filepath.Join(dir, p))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			if len(data) > 2000 {
				data = data[len(data)-2000:]
			}
			fmt.Fprintf(&b, "== %s\n%s\n", f, data)
		}
	}
	return b.String()
}
