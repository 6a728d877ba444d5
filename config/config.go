// Package config loads and validates Switchyard's one cluster file.
//
// A Config is built in three steps: defaults, a strict TOML decode on top
// (unknown keys are errors), then Validate, which reports every problem at
// once with its file:line:column. Daemons read a Config; library packages
// never see it: cmd wiring copies values onto servers.
package config

import (
	"slices"
	"time"
)

// Config is the whole cluster: one file every daemon starts from.
type Config struct {
	// StateDir holds keys and other files the daemons write; relative
	// paths in this file resolve against it. "/var/lib/switchyard" if empty.
	StateDir string                `toml:"state_dir"`
	Broker   Broker                `toml:"broker"`
	Brokers  map[string]BrokerNode `toml:"brokers"` // [brokers.NAME]: more brokers, for high availability
	Gateways map[string]Gateway    `toml:"gateway"` // [gateway.NAME]
	Servers  map[string]Server     `toml:"server"`  // [server.NAME]
	Apps     map[string]App        `toml:"app"`     // [app.NAME]
	Users    map[string]User       `toml:"user"`    // [user.NAME]
	Groups   map[string]Group      `toml:"group"`   // [group.NAME]
	Regions  map[string]Region     `toml:"region"`  // [region.NAME]
	Policy   Policy                `toml:"policy"`
	Auth     Auth                  `toml:"auth"` // user certificates and revoked keys, cluster-wide
	Etcd     Etcd                  `toml:"etcd"` // where several brokers keep state and elect a leader; none if empty

	// Recording is session recording and watching, on every app server.
	Recording Recording `toml:"recording"`
	Audit     Audit     `toml:"audit"` // where each node writes its audit trail
	// Limits are every app's resource limits, unless its own
	// [app.NAME.limits] says otherwise.
	Limits Limits `toml:"limits"`

	// Path is the file this Config was loaded from (not a TOML key).
	Path string `toml:"-"`
	// Hash identifies the file's content (12 hex digits of its SHA-256):
	// each node reports the hash of the config it runs, so a cluster on
	// two configs shows. Empty if built in code.
	Hash string `toml:"-"`

	pos *positions // where each key is in the file, for Validate; nil if built in code
}

// Broker configures the broker of node name "broker", and what every
// broker shares when there are more ([brokers.NAME], see BrokerNode).
type Broker struct {
	Listen string `toml:"listen"` // internal SSH address; "127.0.0.1:7000" if empty
	// Admin is where the admin API (status, metrics, drain) and the
	// broker CLI meet: "unix:PATH", a Unix socket of mode 0660 (PATH
	// relative to StateDir), or "host:port" (TCP, AdminToken required).
	// DefaultAdmin if empty.
	Admin string `toml:"admin"`
	// AdminGroup is the group owning the admin socket, whose members may
	// use it besides root and the broker's own user; the broker's group
	// if empty.
	AdminGroup string `toml:"admin_group"`
	// AdminTCP is a further TCP listener for the admin API, such as for
	// Prometheus; none if empty. AdminToken required.
	AdminTCP string `toml:"admin_tcp"`
	// AdminToken is the bearer token every request on a TCP admin
	// listener must carry, loopback included.
	AdminToken string `toml:"admin_token"`
	// AdminNames are host names a TCP admin listener may be addressed by
	// (the Host and Origin headers), besides its own address.
	AdminNames []string `toml:"admin_names"`
	// AdminOpenMetrics lets GET /metrics, /healthz and /readyz on a TCP admin
	// listener through without the token.
	AdminOpenMetrics bool `toml:"admin_open_metrics"`

	ReportInterval time.Duration `toml:"report_interval"` // heartbeat period; control.DefaultReportInterval if left out
	PublicKey      string        `toml:"public_key"`      // node key, authorized_keys format; file keys/broker.pub if empty
	// Reservation is how long an app the broker pre-launched for a
	// redirected client waits for it; control.DefaultReservation if left out (0s: the same).
	Reservation time.Duration `toml:"reservation"`
}

// Gateway configures one gateway (the slave binary): where users connect.
type Gateway struct {
	Listen    string `toml:"listen"`     // user-facing SSH address, required
	Address   string `toml:"address"`    // host:port users are told to use; Listen if empty
	HostKey   string `toml:"host_key"`   // user-facing host key file; keys/NAME_host if empty, generated if missing
	PublicKey string `toml:"public_key"` // node key, authorized_keys format; file keys/NAME.pub if empty
	Capacity  int    `toml:"capacity"`   // max concurrent sessions; 1000 if left out; 0 means no limit
	Region    string `toml:"region"`     // region the gateway is in; "" if unknown
	// AliveInterval is how often a silent client is asked for a reply;
	// after AliveCountMax unanswered asks its connection is closed (its
	// PTY sessions detach). 15s if zero, and 3 if alive_count_max is
	// left out (the file cannot set it to 0: see zerolimits.go).
	AliveInterval time.Duration `toml:"alive_interval"`
	AliveCountMax int           `toml:"alive_count_max"`
	// Reach names the servers this gateway can reach (its network);
	// every server if empty.
	Reach []string `toml:"reach"`
	// Redirect is what this gateway does with a session the broker gives
	// to another gateway: RedirectHint (tell the client where to go) or
	// RedirectRelay (carry it through that gateway). RedirectHint if empty.
	Redirect string `toml:"redirect"`
	// Internal is the internal SSH address other gateways relay sessions
	// through; "" for none. Required when a relaying gateway may need it.
	Internal string `toml:"internal"`
	// PasswordAuth offers the "password" method to users with a
	// password_hash; false (the default) does not even advertise it.
	PasswordAuth bool `toml:"password_auth"`
	// Admin is a loopback address ("127.0.0.1:9101") where the gateway
	// serves /metrics, /healthz and /readyz, without a token; none if
	// empty (the default).
	Admin string `toml:"admin"`
	// UpgradeDrain is how long a gateway process that handed its
	// listener to its successor (SIGUSR2) keeps serving its established
	// connections before it detaches their sessions and exits; 1h if zero.
	UpgradeDrain time.Duration `toml:"upgrade_drain"`
	// RideThrough is how long a terminal session whose link to appd
	// dropped without an exit (appd restarting, a broken connection)
	// keeps its client and retries re-attaching to the same session
	// before it detaches; 10s if zero, never if negative.
	RideThrough time.Duration `toml:"ride_through"`

	// Limits on what clients may do; left out, the default shown. They
	// cannot be switched off: Parse refuses 0 for the counts (see
	// zerolimits.go), and in a Config built in code 0 means the default.
	HandshakeTimeout   time.Duration `toml:"handshake_timeout"`     // time from TCP accept to authenticated; 20s
	MaxAuthTries       int           `toml:"max_auth_tries"`        // failed methods per connection before disconnect; 6
	AuthFailLimit      int           `toml:"auth_fail_limit"`       // failures from one address within AuthFailWindow that block it; 20
	AuthFailWindow     time.Duration `toml:"auth_fail_window"`      // the counting window, and how long a blocked address is refused; 1m
	MaxConnsPerSource  int           `toml:"max_conns_per_source"`  // concurrent connections from one address; 50
	MaxSessionsPerUser int           `toml:"max_sessions_per_user"` // concurrent sessions of one user on this gateway; 20
	MaxChannelsPerConn int           `toml:"max_channels_per_conn"` // concurrent session channels on one connection; 10
}

// Drain is g's UpgradeDrain, or its default of one hour.
func (g Gateway) Drain() time.Duration {
	if g.UpgradeDrain <= 0 {
		return time.Hour
	}
	return g.UpgradeDrain
}

// Auth configures user certificates and revoked keys for every gateway.
type Auth struct {
	// TrustedUserCAKeys are CA public keys (authorized_keys format) whose
	// user certificates are accepted; TrustedUserCAKeysFile is a file of
	// them, relative to StateDir. None if both are empty.
	TrustedUserCAKeys     []string `toml:"trusted_user_ca_keys"`
	TrustedUserCAKeysFile string   `toml:"trusted_user_ca_keys_file"`
	// RevokedKeys are refused as user keys, certificate keys and CAs:
	// authorized_keys lines or SHA256 fingerprints ("SHA256:...").
	RevokedKeys []string `toml:"revoked_keys"`
}

// Values of Gateway.Redirect.
const (
	RedirectHint  = "hint"  // write the command to run instead, exit 75
	RedirectRelay = "relay" // carry the session through the chosen gateway
)

// Reaches reports whether gateway g reaches server: its reach lists it,
// or is empty.
func (g Gateway) Reaches(server string) bool {
	return len(g.Reach) == 0 || slices.Contains(g.Reach, server)
}

// Server configures one app server (appd).
type Server struct {
	Listen      string   `toml:"listen"`       // internal SSH address gateways dial, required
	MaxSessions int      `toml:"max_sessions"` // 100 if left out; 0 means no limit
	Apps        []string `toml:"apps"`         // apps offered; every app if empty
	Draining    bool     `toml:"draining"`     // no new placements when true
	Region      string   `toml:"region"`       // region the server is in; "" if unknown
	PublicKey   string   `toml:"public_key"`   // node key, authorized_keys format; file keys/NAME.pub if empty
	// Admin is a loopback address where appd serves /metrics, /healthz
	// and /readyz, as a gateway's admin; none if empty (the default).
	Admin string `toml:"admin"`
	// Handover is how long appd's keeper keeps the PTY sessions of an
	// appd that went away (a restart, an upgrade, a crash) for the next
	// appd to take back, before it ends their apps; 30s if zero.
	Handover time.Duration `toml:"handover"`
}

// App is a program appd may run. A request names an app, never a command.
type App struct {
	Argv        []string          `toml:"argv"`         // program and fixed arguments, required; no shell
	Env         map[string]string `toml:"env"`          // added to the allow-listed client environment
	Dir         string            `toml:"dir"`          // working directory; the run-as user's home if empty
	User        string            `toml:"user"`         // Unix user to run as when appd runs as root
	AllowRoot   bool              `toml:"allow_root"`   // permit running as root
	AllowArgs   bool              `toml:"allow_args"`   // append the user's words to Argv (as argv, never a shell)
	Description string            `toml:"description"`  // one line shown to users
	Grace       *time.Duration    `toml:"grace"`        // how long a dropped PTY session keeps running, resumable; DefaultGrace if unset, 0 hangs up at once
	IdleTimeout time.Duration     `toml:"idle_timeout"` // end (or detach) a session with no input nor output this long; 0: never
	CPU         float64           `toml:"cpu"`          // CPUs one session uses, for placement; 0: appd learns it

	// Record is RecordOff, RecordOutput or RecordInput (output and
	// input); [recording] default if empty.
	Record string `toml:"record"`
	Limits Limits `toml:"limits"` // resource limits of each session, over the [limits] table's
}

// DefaultGrace is an app's grace period when the file does not set one.
const DefaultGrace = 10 * time.Minute

// ReservedApps are words the gateway itself answers (`ssh gw sessions`,
// `ssh -t gw resume`); no app may take these names.
var ReservedApps = []string{"resume", "sessions"}

// GracePeriod is how long a PTY session of the app whose connection
// dropped keeps running, detached, for its user to resume: Grace, or
// DefaultGrace when unset.
func (a App) GracePeriod() time.Duration {
	if a.Grace == nil {
		return DefaultGrace
	}
	return *a.Grace
}

// User is a person who may log in through a gateway.
type User struct {
	Keys     []string `toml:"keys"`      // authorized_keys lines
	KeysFile string   `toml:"keys_file"` // an authorized_keys file, relative to StateDir
	Groups   []string `toml:"groups"`    // groups the user belongs to
	Apps     []string `toml:"apps"`      // apps allowed besides the groups'; "*" means all
	// Principals are the certificate principals that log in as this
	// user; the user's own name if empty.
	Principals []string `toml:"principals"`
	// PasswordHash is a bcrypt ("$2a$...") or argon2id PHC
	// ("$argon2id$v=19$m=...,t=...,p=...$salt$hash") hash; no password
	// login if empty. Used only on gateways with password_auth.
	PasswordHash string `toml:"password_hash"`
}

// UserPrincipals returns the certificate principals of user u named name.
func (u User) UserPrincipals(name string) []string {
	if len(u.Principals) == 0 {
		return []string{name}
	}
	return u.Principals
}

// Group grants apps to its members.
type Group struct {
	Apps []string `toml:"apps"` // apps allowed; "*" means all
}
