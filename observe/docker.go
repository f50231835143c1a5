package observe

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// MaxLogEvidence is how many matching log lines are kept per container.
const MaxLogEvidence = 5

// LogEvidenceTail is how many of a node container's last log lines are
// searched for evidence.
const LogEvidenceTail = 200

// LogEvidencePattern is the extended regular expression (matched without
// case) of log lines showing that a node cannot follow the primary.
// "failed", not "fail": every pg_autoctl line about pg_rewind names
// pgautofailover, which holds "fail".
const LogEvidencePattern = `pg_rewind.*(failed|error|could not)|(failed|error|could not).*pg_rewind|` +
	`is not a child of this server's history|database system identifier differs|` +
	`does not know how to reach state|forked off from database system timeline|` +
	`could not find previous WAL record|failed to initialize standby|` +
	`requested starting point .* is ahead of the WAL flush position`

// DockerSocket is where the observer reaches a VM's Docker engine: its API
// socket (the docker CLI's default), forwarded over the VM's SSH
// connection. The SSH user needs the access to it that the CLI needs.
const DockerSocket = "/var/run/docker.sock"

// maxEngineAnswer bounds one answer of a Docker engine.
const maxEngineAnswer = 64 << 20

// logEvidence is LogEvidencePattern, matched without case.
var logEvidence = regexp.MustCompile("(?i)" + LogEvidencePattern)

// evidenceWords holds, lowercase, a word that each alternative of
// LogEvidencePattern contains: a line with none of them cannot match, and
// is not put through the pattern (whose backtracking over every line of
// every node's log tail was a quarter of an observation's CPU).
var evidenceWords = []string{"pg_rewind", "child of this server", "identifier differs", "how to reach state",
	"forked off", "previous wal record", "initialize standby", "requested starting point"}

// mayBeEvidence reports whether l contains one of evidenceWords, in any
// case.
func mayBeEvidence(l string) bool {
	l = strings.ToLower(l)
	for _, w := range evidenceWords {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// pgUser is the PostgreSQL role the observer reads a node's server as:
// the image's user, initdb's superuser (pg_file_settings needs one).
const pgUser = "postgres"

// PostgresQuery is the SQL asked of each running node's server: one JSON
// object with the postmaster's start time, the entries of
// postgresql.auto.conf (the last of each name, applied or not: a
// parameter that needs a restart is written but "could not be applied"),
// the parameters pending a restart, and the parameters that take effect
// only at a restart (pg_settings.context = 'postmaster': the server's own
// list, whatever its major version), and the standbys streaming from it
// (pg_stat_replication; see Standby for the lag).
const PostgresQuery = `SELECT json_build_object(` +
	`'start', pg_postmaster_start_time(), ` +
	`'params', coalesce((SELECT json_object_agg(name, setting) FROM (SELECT DISTINCT ON (name) name, setting FROM pg_file_settings ` +
	`WHERE sourcefile LIKE '%/postgresql.auto.conf' ORDER BY name, seqno DESC) s), '{}'), ` +
	`'pending', coalesce((SELECT json_agg(name ORDER BY name) FROM pg_settings WHERE pending_restart), '[]'), ` +
	`'postmaster', coalesce((SELECT json_agg(name ORDER BY name) FROM pg_settings WHERE context = 'postmaster'), '[]'), ` +
	`'standbys', coalesce((SELECT json_agg(json_build_object('name', application_name, 'state', state, 'sync_state', sync_state, ` +
	`'replay_lag', extract(epoch FROM coalesce(replay_lag, CASE WHEN replay_lsn = sent_lsn THEN interval '0' END))) ` +
	`ORDER BY application_name) FROM pg_stat_replication), '[]'))`

// startSlack is how much earlier than its container a node's postmaster
// may seem to have started (clock steps) and still be taken as its own.
const startSlack = 2 * time.Second

// ObserveVM reads every container and volume labelled as the VM's from
// the VM's Docker engine API, and what the PostgreSQL server of each
// running node container says, through connections d forwards from the
// VM (nothing is started on the VM: no docker CLI, no docker exec, each of
// which costs tens of milliseconds of CPU). Requests go in waves, each
// wave's at once: the VM's containers and volumes; every container's
// inspect; every node container's log tail and, when it runs, its server.
//
// It never fails: a VM that cannot be reached, or whose Docker does not
// answer, or whose answer cannot be parsed, is returned with Reached false
// and Error saying why. A server that cannot be read is recorded in the
// container's Postgres.Error. Containers and volumes are sorted by name;
// only pgaf.* labels are kept.
func ObserveVM(ctx context.Context, d Dialer, vm string) (res VM) {
	res = VM{Name: vm, Containers: []Container{}, Volumes: []Volume{}}
	defer func() {
		if p := recover(); p != nil {
			res = VM{Name: vm, Error: fmt.Sprintf("observe %s: panic: %v", vm, p), Containers: []Container{}, Volumes: []Volume{}}
		}
	}()
	e := newEngine(d, vm)
	defer e.close()
	cs, vs, err := e.observe(ctx)
	if err != nil {
		res.Error = fmt.Sprintf("observe %s: %v", vm, err)
		return res
	}
	res.Reached = true
	res.Containers, res.Volumes = cs, vs
	return res
}

// ObserveVMs observes the named VMs in parallel, each bounded by timeout
// (when positive) and by ctx. The result is sorted by VM name.
func ObserveVMs(ctx context.Context, d Dialer, names []string, timeout time.Duration) []VM {
	res := make([]VM, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			vctx := ctx
			if timeout > 0 {
				var cancel context.CancelFunc
				vctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			res[i] = ObserveVM(vctx, d, name)
		})
	}
	wg.Wait()
	sort.SliceStable(res, func(i, j int) bool { return res[i].Name < res[j].Name })
	return res
}

// engine is one VM's Docker engine API, over connections d forwards to
// DockerSocket, for the length of one observation.
type engine struct {
	d     Dialer
	vm    string
	tr    *http.Transport
	hc    *http.Client
	first chan net.Conn // the connection connect made, for the first request
}

func newEngine(d Dialer, vm string) *engine {
	e := &engine{d: d, vm: vm, first: make(chan net.Conn, 1)}
	e.tr = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			select {
			case c := <-e.first:
				return c, nil
			default:
				return safeDial(ctx, d, vm, "unix", DockerSocket)
			}
		},
		DisableCompression:  true,
		MaxIdleConnsPerHost: 8,
	}
	e.hc = &http.Client{Transport: e.tr}
	return e
}

// connect opens the first connection to the engine itself: an unreachable
// VM or a refused forwarding is reported as the dialer said it (net/http
// reports a dial that outlives the request's context as that context's
// error alone), once, not as each request's failure.
func (e *engine) connect(ctx context.Context) error {
	c, err := safeDial(ctx, e.d, e.vm, "unix", DockerSocket)
	if err != nil {
		return err
	}
	e.first <- c
	return nil
}

// safeDial is d.Dial with a panic of d turned into an error: it runs in
// goroutines of net/http and pgx, where ObserveVM's recover cannot see it.
func safeDial(ctx context.Context, d Dialer, vm, network, addr string) (c net.Conn, err error) {
	defer func() {
		if p := recover(); p != nil {
			c, err = nil, fmt.Errorf("dial %s %s on %s: panic: %v", network, addr, vm, p)
		}
	}()
	return d.Dial(ctx, vm, network, addr)
}

// guard runs f in a goroutine of the observer, turning a panic into an
// error: a bug leaves the VM unobserved, it does not end the process.
func guard(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return f()
}

// close closes the connections the observation left open.
func (e *engine) close() {
	select {
	case c := <-e.first:
		c.Close()
	default:
	}
	e.tr.CloseIdleConnections()
}

// errNotFound is what get returns for a 404: an object removed since it
// was listed.
var errNotFound = errors.New("not found")

// get sends GET path?q (the engine's current API version) and returns the
// body of a 200 answer. Other answers are errors carrying the engine's
// message; a 404 wraps errNotFound.
func (e *engine) get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	u := "http://docker" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("docker engine: %w", err)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("docker engine GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxEngineAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("docker engine GET %s: read: %w", path, err)
	}
	if len(body) > maxEngineAnswer {
		return nil, fmt.Errorf("docker engine GET %s: answer larger than %d bytes", path, maxEngineAnswer)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &m) == nil && m.Message != "" {
			msg = m.Message
		}
		err := fmt.Errorf("docker engine GET %s: %s: %s", path, resp.Status, msg)
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w: %w", errNotFound, err)
		}
		return nil, err
	}
	return body, nil
}

// getJSON is get, decoding the answer into v.
func (e *engine) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	body, err := e.get(ctx, path, q)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("docker engine GET %s: %w", path, err)
	}
	return nil
}

// listedContainer is the part of GET /containers/json we read: the
// containers to inspect.
type listedContainer struct {
	ID string `json:"Id"`
}

// inspectContainer is the part of GET /containers/{id}/json we read.
type inspectContainer struct {
	ID           string `json:"Id"`
	Name         string `json:"Name"`
	RestartCount int    `json:"RestartCount"`
	State        struct {
		Status     string `json:"Status"`
		StartedAt  string `json:"StartedAt"`
		FinishedAt string `json:"FinishedAt"`
	} `json:"State"`
	Config struct {
		Image  string            `json:"Image"`
		Labels map[string]string `json:"Labels"`
		Cmd    []string          `json:"Cmd"`
		Env    []string          `json:"Env"`
		Tty    bool              `json:"Tty"`
	} `json:"Config"`
}

// volumeList is GET /volumes's answer. UsageData is set only by docker
// system df.
type volumeList struct {
	Volumes []struct {
		Name      string            `json:"Name"`
		Labels    map[string]string `json:"Labels"`
		UsageData *struct {
			Size int64 `json:"Size"`
		} `json:"UsageData"`
	} `json:"Volumes"`
}

func (e *engine) observe(ctx context.Context) ([]Container, []Volume, error) {
	label, err := json.Marshal(map[string][]string{"label": {LabelVM + "=" + e.vm}})
	if err != nil {
		return nil, nil, err
	}
	var (
		listed     []listedContainer
		vl         volumeList
		lerr, verr error
		wg         sync.WaitGroup
	)
	wg.Go(func() {
		verr = guard(func() error { return e.getJSON(ctx, "/volumes", url.Values{"filters": {string(label)}}, &vl) })
	})
	// The list goes on the connection connect opens, beside the volumes'.
	if err := e.connect(ctx); err != nil {
		wg.Wait()
		return nil, nil, err
	}
	wg.Go(func() {
		lerr = guard(func() error {
			return e.getJSON(ctx, "/containers/json", url.Values{"all": {"1"}, "filters": {string(label)}}, &listed)
		})
	})
	wg.Wait()
	if lerr != nil {
		return nil, nil, lerr
	}
	if verr != nil {
		return nil, nil, verr
	}

	found := make([]*Container, len(listed))
	errs := make([]error, len(listed))
	for i, lc := range listed {
		wg.Go(func() {
			errs[i] = guard(func() (err error) {
				found[i], err = e.container(ctx, lc.ID)
				return err
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	cs := make([]Container, 0, len(found))
	for _, c := range found {
		if c != nil { // nil: removed since it was listed
			cs = append(cs, *c)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })

	vs := make([]Volume, 0, len(vl.Volumes))
	for _, rv := range vl.Volumes {
		v := Volume{Name: rv.Name, SizeBytes: -1, Labels: ourLabels(rv.Labels)}
		v.Cluster = v.Labels[LabelCluster]
		v.Node = v.Labels[LabelNode]
		v.Rebuild = v.Labels[LabelRebuild]
		if rv.UsageData != nil && rv.UsageData.Size >= 0 {
			v.SizeBytes = rv.UsageData.Size
		}
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].Name < vs[j].Name })
	return cs, vs, nil
}

// container inspects one container and, for a node, reads its log's
// evidence and (when it runs) its server. A container removed since it
// was listed gives nil and no error.
func (e *engine) container(ctx context.Context, id string) (*Container, error) {
	var ic inspectContainer
	if err := e.getJSON(ctx, "/containers/"+url.PathEscape(id)+"/json", nil, &ic); err != nil {
		if errors.Is(err, errNotFound) {
			return nil, nil
		}
		return nil, err
	}
	c := &Container{
		Name:         strings.TrimPrefix(ic.Name, "/"),
		ID:           ic.ID,
		Image:        ic.Config.Image,
		State:        ic.State.Status,
		RestartCount: ic.RestartCount,
		Labels:       ourLabels(ic.Config.Labels),
		Command:      ic.Config.Cmd,
	}
	c.Cluster = c.Labels[LabelCluster]
	c.Node = c.Labels[LabelNode]
	c.Role = c.Labels[LabelRole]
	c.SpecHash = c.Labels[LabelSpecHash]
	c.Rebuild = c.Labels[LabelRebuild]
	if t, err := time.Parse(time.RFC3339Nano, ic.State.StartedAt); err == nil && t.Year() > 1 {
		c.StartedAt = t.UTC()
	}
	if t, err := time.Parse(time.RFC3339Nano, ic.State.FinishedAt); err == nil && t.Year() > 1 && c.State != "running" && c.State != "restarting" {
		c.FinishedAt = t.UTC()
	}
	if c.Role != RoleNode {
		return c, nil
	}
	var (
		wg         sync.WaitGroup
		lerr, perr error
	)
	wg.Go(func() {
		lerr = guard(func() error {
			c.LogEvidence = e.evidence(ctx, ic.ID, ic.Config.Tty)
			return nil
		})
	})
	if c.State == "running" {
		wg.Go(func() {
			perr = guard(func() error {
				c.Postgres = ReadPostgres(ctx, e.d, e.vm, pgUser, postgresPort(ic.Config.Cmd, ic.Config.Env), c.StartedAt)
				return nil
			})
		})
	}
	wg.Wait()
	return c, errors.Join(lerr, perr)
}

// evidence returns the lines of the container's last LogEvidenceTail log
// lines (stdout and stderr) that match LogEvidencePattern, at most the
// last MaxLogEvidence. A log that cannot be read gives none: evidence only
// ever allows a destructive action, so its absence is the safe side.
func (e *engine) evidence(ctx context.Context, id string, tty bool) []string {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "tail": {strconv.Itoa(LogEvidenceTail)}}
	body, err := e.get(ctx, "/containers/"+url.PathEscape(id)+"/logs", q)
	if err != nil {
		return nil
	}
	if !tty {
		body = demux(body)
	}
	return matchEvidence(body)
}

// demux joins the payloads of Docker's multiplexed log stream (a
// container without a TTY): frames of an 8-byte header (stream, 3 zero
// bytes, big-endian payload length) and the payload. A truncated last
// frame keeps what arrived.
func demux(b []byte) []byte {
	var out []byte
	for len(b) >= 8 {
		n := int(binary.BigEndian.Uint32(b[4:8]))
		b = b[8:]
		n = min(n, len(b))
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return out
}

// matchEvidence returns the lines of log that match LogEvidencePattern,
// trimmed, at most the last MaxLogEvidence.
func matchEvidence(log []byte) []string {
	var lines []string
	for _, l := range strings.Split(string(log), "\n") {
		l = strings.TrimRight(l, "\r ")
		if l != "" && mayBeEvidence(l) && logEvidence.MatchString(l) {
			lines = append(lines, l)
		}
	}
	if len(lines) > MaxLogEvidence {
		lines = lines[len(lines)-MaxLogEvidence:]
	}
	return lines
}

// postgresPort is the port a node container's server listens on: the
// --pgport of its pg_autoctl command, else PGPORT in its environment,
// else PostgreSQL's default.
func postgresPort(cmd, env []string) int {
	for i, a := range cmd {
		v, ok := strings.CutPrefix(a, "--pgport=")
		if !ok && a == "--pgport" && i+1 < len(cmd) {
			v, ok = cmd[i+1], true
		}
		if p, err := strconv.Atoi(v); ok && err == nil {
			return p
		}
	}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PGPORT="); ok {
			if p, err := strconv.Atoi(v); err == nil {
				return p
			}
		}
	}
	return 5432
}

// ReadPostgres asks PostgresQuery of the server listening on the VM's
// 127.0.0.1:port, as user, through a connection d forwards from the VM
// (pg_autoctl's initdb trusts local TCP connections; over SSH, without
// TLS). started is when the server's container started: a postmaster that
// started well before it belongs to another container. It never fails:
// what went wrong is in the result's Error.
func ReadPostgres(ctx context.Context, d Dialer, vm, user string, port int, started time.Time) *Postgres {
	failed := func(format string, args ...any) *Postgres {
		return &Postgres{Error: fmt.Sprintf("postgres on %s port %d: ", vm, port) + fmt.Sprintf(format, args...)}
	}
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable application_name=pgaf-reconciler", port, user))
	if err != nil {
		return failed("%v", err)
	}
	cfg.DialFunc = func(ctx context.Context, _, addr string) (net.Conn, error) {
		return safeDial(ctx, d, vm, "tcp", addr)
	}
	cfg.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec // one round trip, no statement cache
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return failed("%v", err)
	}
	defer closeReadOnly(ctx, conn)
	var raw []byte
	if err := conn.QueryRow(ctx, PostgresQuery).Scan(&raw); err != nil {
		return failed("%v", err)
	}
	pg := parsePostgres(raw)
	if pg.Error == "" && !started.IsZero() && pg.StartTime.Before(started.Add(-startSlack)) {
		return failed("started at %s, before its container (%s): it is another container's server",
			pg.StartTime.Format(time.RFC3339), started.Format(time.RFC3339))
	}
	return pg
}

// parsePostgres reads the JSON PostgresQuery returns.
func parsePostgres(raw []byte) *Postgres {
	var r struct {
		Start    string            `json:"start"`
		Params   map[string]string `json:"params"`
		Pending  []string          `json:"pending"`
		Restart  []string          `json:"postmaster"`
		Standbys []struct {
			Name      string   `json:"name"`
			State     string   `json:"state"`
			SyncState string   `json:"sync_state"`
			ReplayLag *float64 `json:"replay_lag"`
		} `json:"standbys"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return &Postgres{Error: fmt.Sprintf("postgres answer: %v", err)}
	}
	pg := &Postgres{Parameters: r.Params, PendingRestart: r.Pending, RestartOnly: r.Restart}
	if len(pg.RestartOnly) == 0 {
		pg.RestartOnly = nil
	}
	if len(pg.Parameters) == 0 {
		pg.Parameters = nil
	}
	if len(pg.PendingRestart) == 0 {
		pg.PendingRestart = nil
	}
	for _, sb := range r.Standbys {
		pg.Standbys = append(pg.Standbys, Standby{Name: sb.Name, State: sb.State, SyncState: sb.SyncState, ReplayLagSeconds: sb.ReplayLag})
	}
	if t, err := time.Parse(time.RFC3339Nano, r.Start); err == nil {
		pg.StartTime = t.UTC()
	}
	return pg
}

// ourLabels keeps the pgaf.* labels (an image's own labels are noise).
func ourLabels(all map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range all {
		if strings.HasPrefix(k, "pgaf.") {
			m[k] = v
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// VolumeSizeCommand is the argv that measures a volume on a VM: a
// throwaway container with no network and the volume mounted read-only
// runs du. Docker's own numbers are no cheaper: docker volume inspect has
// no size, and docker system df -v, which has, walks every image and
// volume of the engine (40 s on the lab's busy engine). So only status
// measures, and only orphaned volumes; the image must be on the VM
// already (--pull never): the cluster's image, which its nodes ran.
func VolumeSizeCommand(volume, image string) []string {
	return []string{"docker", "run", "--rm", "--pull", "never", "--network", "none", "--log-driver", "none",
		"-v", volume + ":/v:ro", "--entrypoint", "du", image, "-sb", "/v"}
}

// VolumeSize measures a volume's size in bytes with VolumeSizeCommand.
func VolumeSize(ctx context.Context, r Runner, vm, volume, image string) (int64, error) {
	out, err := r.Run(ctx, vm, VolumeSizeCommand(volume, image))
	if err != nil {
		return -1, fmt.Errorf("measure volume %s on %s: %w", volume, vm, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return -1, fmt.Errorf("measure volume %s on %s: no output", volume, vm)
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return -1, fmt.Errorf("measure volume %s on %s: %q: %w", volume, vm, f[0], err)
	}
	return n, nil
}
