// Command profd runs one Switchyard daemon exactly as cmd/broker,
// cmd/slave or cmd/appd would, and serves profiles on a loopback address,
// so that bench/sidebyside.sh -p can profile the gateway and appd under
// load. It is a measuring aid, not a way to run Switchyard.
//
//	profd -pprof 127.0.0.1:PORT -dir DIR broker|slave|appd [daemon flags]
//
// Besides net/http/pprof's /debug/pprof/, it answers
//
//	/cpu/start?name=N   start a CPU profile into DIR/DAEMON-N.cpu.pprof
//	/cpu/stop           stop it
//	/heap?name=N        collect garbage, then write DIR/DAEMON-N.heap.pprof
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"

	"switchyard/daemon"
)

func main() {
	fs := flag.NewFlagSet("profd", flag.ExitOnError)
	addr := fs.String("pprof", "127.0.0.1:0", "loopback `address` to serve profiles on")
	dir := fs.String("dir", ".", "`directory` for profiles")
	fs.Parse(os.Args[1:])
	runs := map[string]daemon.RunFunc{"broker": daemon.Broker, "slave": daemon.Slave, "appd": daemon.Appd}
	run, ok := runs[fs.Arg(0)]
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: profd -pprof ADDR -dir DIR broker|slave|appd [daemon flags]")
		os.Exit(2)
	}
	name := fs.Arg(0)
	if host, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintf(os.Stderr, "profd: -pprof %q: want a loopback host:port\n", *addr)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "profd: %v\n", err)
		os.Exit(1)
	}
	p := &profiler{dir: *dir, daemon: name}
	http.HandleFunc("/cpu/start", p.startCPU)
	http.HandleFunc("/cpu/stop", p.stopCPU)
	http.HandleFunc("/heap", p.heap)
	go http.Serve(ln, nil)
	os.Args = append([]string{name}, fs.Args()[1:]...)
	daemon.Main(name, run)
}

// profiler writes profiles named after the daemon into dir.
type profiler struct {
	dir, daemon string
	mu          sync.Mutex // guards cpu
	cpu         *os.File   // the CPU profile being written, if any
}

func (p *profiler) path(r *http.Request, kind string) string {
	return filepath.Join(p.dir, p.daemon+"-"+filepath.Base(r.FormValue("name"))+"."+kind+".pprof")
}

func (p *profiler) startCPU(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cpu != nil {
		http.Error(w, "a CPU profile is running", http.StatusConflict)
		return
	}
	f, err := os.Create(p.path(r, "cpu"))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	p.cpu = f
}

func (p *profiler) stopCPU(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cpu == nil {
		http.Error(w, "no CPU profile is running", http.StatusConflict)
		return
	}
	pprof.StopCPUProfile()
	p.cpu.Close()
	p.cpu = nil
}

func (p *profiler) heap(w http.ResponseWriter, r *http.Request) {
	runtime.GC()
	f, err := os.Create(p.path(r, "heap"))
	if err == nil {
		err = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
