package daemon

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// synopses are each command's usage lines, by flag set name.
var synopses = map[string]string{
	"broker": `broker [-node NAME] -config FILE [flags]    run a broker
broker check [-node NAME] -config FILE      validate the file (and, with -node, this host for that node): every problem as file:line:col
broker status [-json] [-node NAME] -config FILE   the cluster as the brokers see it
broker drain|undrain [-node NAME] -config FILE SERVER   stop or resume new sessions on SERVER
broker replay [-speed N] [-idle S] [-end] [-cast] -config FILE SESSION   play a session's recording
broker watch [-redraw] -config FILE SESSION   watch a running session read-only (q or Ctrl-C stops)
broker reload [-node NAME] -config FILE     SIGHUP the running broker and wait: exit 1 if it refused the file`,
	"broker reload":  "broker reload [-node NAME] [-pid PID] -config FILE",
	"slave reload":   "slave reload -node NAME [-pid PID] -config FILE",
	"appd reload":    "appd reload -node NAME [-pid PID] -config FILE",
	"broker replay":  "broker replay [-speed N] [-idle SECONDS] [-end] [-cast] [-node NAME] -config FILE SESSION",
	"broker watch":   "broker watch [-redraw] [-node NAME] -config FILE SESSION",
	"broker status":  "broker status [-json] [-node NAME] -config FILE   (exit 3: the cluster is degraded)",
	"broker drain":   "broker drain [-node NAME] -config FILE SERVER",
	"broker undrain": "broker undrain [-node NAME] -config FILE SERVER",
	"slave": `slave -node NAME -config FILE [flags]       run a gateway (SIGHUP reloads, SIGUSR2 upgrades in place)
slave check [-node NAME] -config FILE       validate the file (and this host for that node)
slave reload -node NAME -config FILE        SIGHUP the running gateway and wait: exit 1 if it refused the file`,
	"appd": `appd -node NAME -config FILE [flags]        run an app server's daemon
appd check [-node NAME] -config FILE        validate the file (and this host for that node: apps, users)
appd reload -node NAME -config FILE         SIGHUP the running appd and wait: exit 1 if it refused the file`,
	"check": "check [-node NAME] [-state DIR] -config FILE",
	"demo":  "demo [-ha] [-config FILE] [-state DIR]        a whole cluster on this machine",
}

// helpRequest is what parse returns for -h or --help: ExitCode prints
// the command's help on standard output and exits 0.
type helpRequest struct{ fs *flag.FlagSet }

func (h *helpRequest) Error() string { return "help requested" }

// versionRequest is what parse returns for -version.
type versionRequest struct{}

func (versionRequest) Error() string { return "version requested" }

// registerVersion adds -version to fs.
func registerVersion(fs *flag.FlagSet) *bool {
	return fs.Bool("version", false, "print the version and build information, and exit")
}

// parseFlags parses args into fs, which must have been given -version by
// registerVersion (parse does it). -h and --help become a helpRequest,
// -version a versionRequest, any other mistake ErrUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	version := fs.Lookup("version")
	if version == nil {
		registerVersion(fs)
		version = fs.Lookup("version")
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &helpRequest{fs}
		}
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if version.Value.String() == "true" {
		return versionRequest{}
	}
	return nil
}

// help is fs's help text: its synopsis and its flags.
func help(fs *flag.FlagSet) string {
	var b bytes.Buffer
	syn := synopses[fs.Name()]
	if syn == "" {
		syn = fs.Name() + " [flags]"
	}
	fmt.Fprintf(&b, "usage:\n%s\n\nflags:\n", indent(syn))
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	b.WriteString("\nexit status: 0 success, 1 failure, 2 a command-line mistake\n")
	return b.String()
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// VersionText is the version line and what the Go toolchain recorded of
// the build: Go version and, when built from a checkout, the commit.
func VersionText(name string) string {
	s := fmt.Sprintf("%s %s", name, Version)
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return s + "\n"
	}
	s += " " + bi.GoVersion
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision", "vcs.time", "vcs.modified":
			s += " " + strings.TrimPrefix(kv.Key, "vcs.") + "=" + kv.Value
		}
	}
	return s + "\n"
}

// usageLine is the short reminder printed after a command-line mistake.
func usageLine(name string) string {
	syn := synopses[name]
	if syn == "" {
		return "usage: " + name + " [flags]; -h for help"
	}
	first, _, _ := strings.Cut(syn, "\n")
	if i := strings.Index(first, "   "); i > 0 {
		first = strings.TrimSpace(first[:i])
	}
	return "usage: " + first + "; -h for help"
}
