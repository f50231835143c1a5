package observe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
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

// vmScript prints, in one round trip, every container labelled with the
// VM ($1) as docker inspect JSON, every such volume as one JSON line, the
// lines of each node container's recent log that match $2, and what the
// PostgreSQL server of each running node container answers to $5 (psql
// through docker exec, on the socket and port its postmaster.pid names).
// The docker commands run in parallel (5 CLI calls for a VM with one
// running node): each costs tens of milliseconds of CPU. Sections start
// with "@@pgaf " lines; log and psql lines are prefixed with "|" so that
// neither can fake a section.
var vmScript = `f="label=` + LabelVM + `=$1"
list=$(docker ps -a --no-trunc --filter "$f" --format '{{.ID}} {{.Label "` + LabelRole + `"}} {{.State}}') || exit 1
t=$(mktemp -d) || exit 1
trap 'rm -rf "$t"' EXIT
ids=
nodes=
running=
while read -r id role state; do
  [ -n "$id" ] || continue
  ids="$ids $id"
  if [ "$role" = ` + RoleNode + ` ]; then
    nodes="$nodes $id"
    if [ "$state" = running ]; then running="$running $id"; fi
  fi
done <<LIST
$list
LIST
for id in $nodes; do
  { docker logs --tail "$3" "$id" 2>&1 | grep -E -i -e "$2" | tail -n "$4" | sed 's/^/|/'; } >"$t/log.$id" &
done
for id in $running; do
  { docker exec -u ` + pgUser + ` "$id" sh -c 'f="$PGDATA/postmaster.pid"; [ -r "$f" ] || { echo "postgres is not running (no postmaster.pid)"; exit 3; }; psql -AtX -h "$(sed -n 5p "$f")" -p "$(sed -n 4p "$f")" -d postgres -c "$1"' sh "$5" 2>&1; echo "rc $?"; } | sed 's/^/|/' >"$t/pg.$id" &
done
{ docker volume ls --filter "$f" --format '` + volumeFormat() + `'; echo "@@pgaf rc $?"; } >"$t/vols" &
if [ -n "$ids" ]; then docker inspect --type container $ids; else echo '[]'; fi >"$t/cont"
echo "@@pgaf rc $?" >>"$t/cont"
wait
echo '@@pgaf containers'
cat "$t/cont"
echo '@@pgaf volumes'
cat "$t/vols"
for id in $nodes; do
  echo "@@pgaf logs $id"
  cat "$t/log.$id"
done
for id in $running; do
  echo "@@pgaf pg $id"
  cat "$t/pg.$id"
done
echo '@@pgaf end'
`

// pgUser runs psql in a node container (the image's non-root user, who
// owns the server and connects over the local socket).
const pgUser = "postgres"

// PostgresQuery is the SQL the VM script runs in each running node
// container: one JSON object with the postmaster's start time, the entries
// of postgresql.auto.conf (the last of each name, applied or not: a
// parameter that needs a restart is written but "could not be applied"),
// and the parameters pending a restart.
const PostgresQuery = `SELECT json_build_object(` +
	`'start', pg_postmaster_start_time(), ` +
	`'params', coalesce((SELECT json_object_agg(name, setting) FROM (SELECT DISTINCT ON (name) name, setting FROM pg_file_settings ` +
	`WHERE sourcefile LIKE '%/postgresql.auto.conf' ORDER BY name, seqno DESC) s), '{}'), ` +
	`'pending', coalesce((SELECT json_agg(name ORDER BY name) FROM pg_settings WHERE pending_restart), '[]'))`

// volumeLabels are the labels read from volumes (docker volume ls prints
// single labels, not the map).
var volumeLabels = []string{LabelManaged, LabelVM, LabelCluster, LabelNode, LabelRole, LabelSpecHash, LabelRebuild}

// volumeFormat is a docker volume ls template printing one JSON object per
// volume, shaped like docker volume inspect's.
func volumeFormat() string {
	var b strings.Builder
	b.WriteString(`{"Name":{{json .Name}},"Labels":{`)
	for i, l := range volumeLabels {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `%q:{{json (.Label %q)}}`, l, l)
	}
	b.WriteString(`}}`)
	return b.String()
}

// VMCommand is the argv ObserveVM runs on a VM: one sh -c script.
func VMCommand(vm string) []string {
	return []string{"sh", "-c", vmScript, "sh", vm, LogEvidencePattern,
		strconv.Itoa(LogEvidenceTail), strconv.Itoa(MaxLogEvidence), PostgresQuery}
}

// ObserveVM reads every container and volume labelled as the VM's, in one
// round trip over r. It never fails: a VM that cannot be reached, or whose
// Docker does not answer, or whose answer cannot be parsed, is returned
// with Reached false and Error saying why. Containers and volumes are
// sorted by name; only pgaf.* labels are kept.
func ObserveVM(ctx context.Context, r Runner, vm string) (res VM) {
	res = VM{Name: vm, Containers: []Container{}, Volumes: []Volume{}}
	defer func() {
		if p := recover(); p != nil {
			res = VM{Name: vm, Error: fmt.Sprintf("observe %s: panic: %v", vm, p), Containers: []Container{}, Volumes: []Volume{}}
		}
	}()
	out, err := r.Run(ctx, vm, VMCommand(vm))
	if err != nil {
		res.Error = fmt.Sprintf("observe %s: %v", vm, err)
		return res
	}
	cs, vs, err := parseVMOutput(out)
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
func ObserveVMs(ctx context.Context, r Runner, names []string, timeout time.Duration) []VM {
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
			res[i] = ObserveVM(vctx, r, name)
		})
	}
	wg.Wait()
	sort.SliceStable(res, func(i, j int) bool { return res[i].Name < res[j].Name })
	return res
}

// inspectContainer is the part of `docker inspect` we read.
type inspectContainer struct {
	ID           string `json:"Id"`
	Name         string `json:"Name"`
	RestartCount int    `json:"RestartCount"`
	State        struct {
		Status    string `json:"Status"`
		StartedAt string `json:"StartedAt"`
	} `json:"State"`
	Config struct {
		Image  string            `json:"Image"`
		Labels map[string]string `json:"Labels"`
	} `json:"Config"`
}

// inspectVolume is what volumeFormat prints for a volume (the shape of
// docker volume inspect, whose UsageData is set only by docker system df).
type inspectVolume struct {
	Name      string            `json:"Name"`
	Labels    map[string]string `json:"Labels"`
	UsageData *struct {
		Size int64 `json:"Size"`
	} `json:"UsageData"`
}

// section is one "@@pgaf ..." part of the script's output.
type section struct {
	header string // "containers", "volumes", "logs <id>", "end"
	body   []byte
	rc     string // from a trailing "@@pgaf rc N" line, if any
}

func splitSections(out []byte) ([]section, error) {
	var secs []section
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if h, ok := strings.CutPrefix(line, "@@pgaf "); ok {
			if rc, ok := strings.CutPrefix(h, "rc "); ok && len(secs) > 0 {
				secs[len(secs)-1].rc = rc
				continue
			}
			secs = append(secs, section{header: h})
			continue
		}
		if len(secs) == 0 {
			continue // noise before the first section (a login banner)
		}
		s := &secs[len(secs)-1]
		s.body = append(s.body, line...)
		s.body = append(s.body, '\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read docker output: %w", err)
	}
	if len(secs) == 0 || secs[len(secs)-1].header != "end" {
		return nil, errors.New("docker output truncated (no end marker)")
	}
	return secs, nil
}

func parseVMOutput(out []byte) ([]Container, []Volume, error) {
	secs, err := splitSections(out)
	if err != nil {
		return nil, nil, err
	}
	var (
		rawCs    []inspectContainer
		rawVs    []inspectVolume
		gotC     bool
		gotV     bool
		evidence = map[string][]string{}
		pgs      = map[string]*Postgres{}
	)
	for _, s := range secs {
		switch {
		case s.header == "containers":
			if err := decodeSection(s, &rawCs); err != nil {
				return nil, nil, fmt.Errorf("docker inspect: %w", err)
			}
			gotC = true
		case s.header == "volumes":
			if rawVs, err = decodeVolumes(s); err != nil {
				return nil, nil, fmt.Errorf("docker volume ls: %w", err)
			}
			gotV = true
		case strings.HasPrefix(s.header, "logs "):
			id := strings.TrimPrefix(s.header, "logs ")
			evidence[id] = parseEvidence(s.body)
		case strings.HasPrefix(s.header, "pg "):
			pgs[strings.TrimPrefix(s.header, "pg ")] = parsePostgres(s.body)
		}
	}
	if !gotC || !gotV {
		return nil, nil, errors.New("docker output lacks the containers or volumes section")
	}
	cs := make([]Container, 0, len(rawCs))
	for _, rc := range rawCs {
		c := Container{
			Name:         strings.TrimPrefix(rc.Name, "/"),
			ID:           rc.ID,
			Image:        rc.Config.Image,
			State:        rc.State.Status,
			RestartCount: rc.RestartCount,
			Labels:       ourLabels(rc.Config.Labels),
		}
		c.Cluster = c.Labels[LabelCluster]
		c.Node = c.Labels[LabelNode]
		c.Role = c.Labels[LabelRole]
		c.SpecHash = c.Labels[LabelSpecHash]
		c.Rebuild = c.Labels[LabelRebuild]
		if t, err := time.Parse(time.RFC3339Nano, rc.State.StartedAt); err == nil && t.Year() > 1 {
			c.StartedAt = t.UTC()
		}
		if c.Role == RoleNode {
			c.LogEvidence = evidence[rc.ID]
			if c.State == "running" {
				c.Postgres = pgs[rc.ID]
			}
		}
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	vs := make([]Volume, 0, len(rawVs))
	for _, rv := range rawVs {
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

// decodeSection decodes a section's JSON array. docker inspect exits 1 when
// an object vanished between listing and inspecting but still prints the
// others, so a non-zero rc is an error only when the JSON is unusable.
func decodeSection(s section, v any) error {
	body := bytes.TrimSpace(s.body)
	if len(body) == 0 {
		if s.rc != "" && s.rc != "0" {
			return fmt.Errorf("exit status %s and no output", s.rc)
		}
		return errors.New("no output")
	}
	if err := json.Unmarshal(body, v); err != nil {
		if s.rc != "" && s.rc != "0" {
			return fmt.Errorf("exit status %s: %w", s.rc, err)
		}
		return err
	}
	return nil
}

// decodeVolumes decodes one JSON object per line (see volumeFormat).
// Labels the template printed as "" are absent ones.
func decodeVolumes(s section) ([]inspectVolume, error) {
	if s.rc != "" && s.rc != "0" {
		return nil, fmt.Errorf("exit status %s", s.rc)
	}
	var vs []inspectVolume
	for _, line := range bytes.Split(s.body, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var v inspectVolume
		if err := json.Unmarshal(line, &v); err != nil {
			return nil, err
		}
		for k, val := range v.Labels {
			if val == "" {
				delete(v.Labels, k)
			}
		}
		vs = append(vs, v)
	}
	return vs, nil
}

func parseEvidence(body []byte) []string {
	var lines []string
	for _, l := range strings.Split(string(body), "\n") {
		l, ok := strings.CutPrefix(l, "|")
		if !ok {
			continue
		}
		l = strings.TrimRight(l, "\r ")
		if l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > MaxLogEvidence {
		lines = lines[len(lines)-MaxLogEvidence:]
	}
	return lines
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

// parsePostgres reads the "|"-prefixed output of one psql call: the JSON
// of PostgresQuery, then "rc N". Anything else is the error psql printed.
func parsePostgres(body []byte) *Postgres {
	var lines []string
	rc := ""
	for _, l := range strings.Split(string(body), "\n") {
		l, ok := strings.CutPrefix(l, "|")
		if !ok {
			continue
		}
		if r, ok := strings.CutPrefix(l, "rc "); ok {
			rc = r
			continue
		}
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	text := strings.Join(lines, " ")
	if rc != "0" {
		if text == "" {
			text = "no output"
		}
		return &Postgres{Error: fmt.Sprintf("psql exit status %s: %s", rc, text)}
	}
	var raw struct {
		Start   string            `json:"start"`
		Params  map[string]string `json:"params"`
		Pending []string          `json:"pending"`
	}
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return &Postgres{Error: fmt.Sprintf("psql output: %v", err)}
	}
	pg := &Postgres{Parameters: raw.Params, PendingRestart: raw.Pending}
	if len(pg.Parameters) == 0 {
		pg.Parameters = nil
	}
	if len(pg.PendingRestart) == 0 {
		pg.PendingRestart = nil
	}
	if t, err := time.Parse(time.RFC3339Nano, raw.Start); err == nil {
		pg.StartTime = t.UTC()
	}
	return pg
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
