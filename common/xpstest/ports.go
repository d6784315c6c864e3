package xpstest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PortFree reports whether a TCP port can be bound on every interface; if
// not, the error names the process holding it when /proc shows one.
func PortFree(port int) error {
	l, err := net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(port))
	if err == nil {
		l.Close()
		return nil
	}
	if holder := PortHolder(port); holder != "" {
		return fmt.Errorf("port %d is in use by %s", port, holder)
	}
	return fmt.Errorf("port %d is in use: %v", port, err)
}

// PortHolder returns "pid N (command line)" for the process with a socket
// listening on port, or "" if none can be found.
func PortHolder(port int) string {
	inodes := map[string]bool{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
				inodes["socket:["+f[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, proc := range procs {
		fds, _ := os.ReadDir(proc + "/fd")
		for _, fd := range fds {
			if target, err := os.Readlink(proc + "/fd/" + fd.Name()); err == nil && inodes[target] {
				cmd, _ := os.ReadFile(proc + "/cmdline")
				return fmt.Sprintf("pid %s (%s)", filepath.Base(proc), strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")))
			}
		}
	}
	return ""
}
