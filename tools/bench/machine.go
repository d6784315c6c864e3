package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// toolPaths are the programs the bench drives.
type toolPaths struct {
	nginx, wrk, curl, taskset string
}

// findTool looks a program up on the PATH and then in the sbin folders,
// which an ordinary user's PATH often lacks although nginx lives there.
func findTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// installScript installs the missing Debian packages ($@). A policy-rc.d
// that answers 101 ("action forbidden") is in place while it runs, unless
// the machine already has one, so that installing nginx does not start the
// system's nginx service on port 80: the bench runs only its own instances.
const installScript = `set -e
created=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	created=1
fi
trap '[ -z "$created" ] || rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y "$@" || { apt-get update && apt-get install -y "$@"; }
`

// ensureTools finds nginx, wrk, curl and taskset, installing the Debian
// packages of the first three with apt-get if any is missing.
func ensureTools() (toolPaths, error) {
	find := func() toolPaths {
		return toolPaths{nginx: findTool("nginx"), wrk: findTool("wrk"), curl: findTool("curl"), taskset: findTool("taskset")}
	}
	t := find()
	var pkgs []string
	if t.nginx == "" || t.wrk == "" {
		pkgs = append(pkgs, "nginx-light", "wrk")
	}
	if t.curl == "" {
		pkgs = append(pkgs, "curl")
	}
	if len(pkgs) > 0 {
		if err := aptInstall(pkgs); err != nil {
			return t, err
		}
		t = find()
	}
	switch {
	case t.nginx == "" || t.wrk == "" || t.curl == "":
		return t, fmt.Errorf("nginx, wrk or curl is still missing after installing %s", strings.Join(pkgs, " "))
	case t.taskset == "":
		return t, errors.New("taskset is missing (Debian package util-linux)")
	}
	return t, nil
}

// aptInstall runs installScript as root, through sudo if need be, with the
// output shown, since it may take a while and may ask for a password.
func aptInstall(pkgs []string) error {
	fmt.Fprintf(os.Stderr, "bench: installing %s with apt-get (no system service is started)\n", strings.Join(pkgs, " "))
	args := append([]string{"DEBIAN_FRONTEND=noninteractive", "sh", "-c", installScript, "install"}, pkgs...)
	name := "env"
	if os.Geteuid() != 0 {
		// sudo clears the environment, so env sets DEBIAN_FRONTEND inside it.
		args = append([]string{"env"}, args...)
		name = "sudo"
	}
	cmd := exec.Command(name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get install %s: %w", strings.Join(pkgs, " "), err)
	}
	return nil
}

// machine describes where the figures come from; they mean little without it.
type machine struct {
	CPU    string `json:"cpu"`
	CPUs   int    `json:"cpus"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	Nginx  string `json:"nginx"`
	Wrk    string `json:"wrk"`
	Curl   string `json:"curl"`
}

// describeMachine reads the CPU model and kernel from /proc and asks each
// program for its version; versionOf runs a program and returns its output.
func describeMachine(versionOf func(bin string, args ...string) string, t toolPaths) machine {
	m := machine{CPU: "unknown", CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	m.Nginx = strings.TrimPrefix(firstLine(versionOf(t.nginx, "-v")), "nginx version: ")
	// "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer"
	m.Wrk, _, _ = strings.Cut(firstLine(versionOf(t.wrk, "-v")), " Copyright")
	// "curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1 …"
	if f := strings.Fields(firstLine(versionOf(t.curl, "--version"))); len(f) >= 2 {
		m.Curl = f[0] + " " + f[1]
	}
	return m
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}
