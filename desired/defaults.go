package desired

import "time"

// Defaults, applied by ApplyDefaults. Each is also written in the comment of
// the field it fills (types.go).
const (
	DefaultSSHPort           = 22
	DefaultDockerNetwork     = "host"
	DefaultFormation         = "default"
	DefaultDatabase          = "postgres"
	DefaultUser              = "postgres"
	DefaultPort              = 5432
	DefaultCandidatePriority = 50
	DefaultAuth              = "trust"
	DefaultSSL               = "off"
	DefaultDivergedPolicy    = "manual"
	DefaultGracePeriod       = 5 * time.Minute
	DefaultRemovedNodeData   = "keep"

	// MaxCandidatePriority is the highest candidate priority the monitor
	// accepts (MAX_USER_DEFINED_CANDIDATE_PRIORITY in pg_auto_failover).
	MaxCandidatePriority = 100

	// UnsetCandidatePriority marks a node whose candidate priority was not
	// written: 0 is a real priority ("never promote this node"), so zero
	// cannot mean "unset". ApplyDefaults replaces it with
	// DefaultCandidatePriority. The loader sets it for nodes without the key.
	UnsetCandidatePriority = -1
)

// ApplyDefaults fills every field the desired state leaves out, in place.
// It is the only place defaults are decided; it is idempotent, and it leaves
// maps and lists non-nil so that a defaulted State compares equal to the
// same State written out by Render and loaded again.
//
// SSH users have no default: which account the reconciler uses on a VM is a
// decision for the operator, and a guessed one only fails later, at SSH.
func ApplyDefaults(s *State) {
	if s.VMs == nil {
		s.VMs = []VM{}
	}
	if s.Clusters == nil {
		s.Clusters = []Cluster{}
	}
	for i := range s.VMs {
		vm := &s.VMs[i]
		if vm.SSH.Port == 0 {
			vm.SSH.Port = DefaultSSHPort
		}
		if vm.DockerNetwork == "" {
			vm.DockerNetwork = DefaultDockerNetwork
		}
	}
	for i := range s.Clusters {
		c := &s.Clusters[i]
		setString(&c.Formation, DefaultFormation)
		setString(&c.Database, DefaultDatabase)
		setString(&c.User, DefaultUser)
		setString(&c.Auth, DefaultAuth)
		setString(&c.SSL, DefaultSSL)
		setString(&c.Diverged.Policy, DefaultDivergedPolicy)
		setString(&c.RemovedNodeData, DefaultRemovedNodeData)
		setString(&c.Monitor.Image, c.Image)
		if c.Monitor.Port == 0 {
			c.Monitor.Port = DefaultPort
		}
		if c.Diverged.GracePeriod.Duration == 0 {
			c.Diverged.GracePeriod.Duration = DefaultGracePeriod
		}
		if c.Nodes == nil {
			c.Nodes = []Node{}
		}
		if c.ClientNetworks == nil {
			c.ClientNetworks = []string{}
		}
		if c.MonitorSettings == nil {
			c.MonitorSettings = map[string]string{}
		}
		if c.PostgreSQLParameters == nil {
			c.PostgreSQLParameters = map[string]string{}
		}
		for j := range c.Nodes {
			n := &c.Nodes[j]
			if n.Port == 0 {
				n.Port = DefaultPort
			}
			if n.CandidatePriority == UnsetCandidatePriority {
				n.CandidatePriority = DefaultCandidatePriority
			}
			if n.ReplicationQuorum == nil {
				t := true
				n.ReplicationQuorum = &t
			}
		}
	}
}

func setString(dst *string, def string) {
	if *dst == "" {
		*dst = def
	}
}
