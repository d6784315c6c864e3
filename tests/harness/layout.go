package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"expserver-go/stages"
)

// Layout is the course's directory layout: the binary runs in App, the web
// root is Public beside it (so "../public" from App), and Temp is the
// "../temp" folder the stage 12 confinement test writes to.
type Layout struct {
	Root, App, Public, Temp string
}

// NewLayout creates the layout in a new temporary directory and copies the
// fixture tree into Public.
func NewLayout(fixtures fs.FS) (*Layout, error) {
	root, err := os.MkdirTemp("", "xps-layout-")
	if err != nil {
		return nil, err
	}
	l := &Layout{
		Root:   root,
		App:    filepath.Join(root, "app"),
		Public: filepath.Join(root, "public"),
		Temp:   filepath.Join(root, "temp"),
	}
	for _, d := range []string{l.App, l.Public} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			os.RemoveAll(root)
			return nil, err
		}
	}
	if err := os.CopyFS(l.Public, fixtures); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	return l, nil
}

// Remove deletes the layout.
func (l *Layout) Remove() error { return os.RemoveAll(l.Root) }

// Fixtures returns the sample web root of the repository, stages/public, as
// built into the binary: a tool that runs away from the repository has it
// too.
func Fixtures() fs.FS {
	sub, err := fs.Sub(stages.Public, "public")
	if err != nil {
		panic(fmt.Sprintf("harness: embedded fixtures: %v", err)) // a constant path; cannot fail
	}
	return sub
}

// CopyTree copies the regular files and directories under src into dst,
// keeping their permission bits.
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// CourseConfig returns the configuration the course's grader uses for
// stages 16 and 17, with the four listener ports and the upstream address
// given: port 0 serves files from ../public with /redirect → 302
// http://localhost:8002/; port 1 proxies to the upstream; port 2 redirects
// everything to https://expserver.github.io; port 3 has no routes.
func CourseConfig(ports [4]int, upstream string) []byte {
	type listener struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	}
	type route map[string]any
	type server struct {
		Listeners []listener `json:"listeners"`
		Routes    []route    `json:"routes,omitempty"`
	}
	ls := func(i int) []listener { return []listener{{Host: "0.0.0.0", Port: ports[i]}} }
	cfg := struct {
		ServerName string   `json:"server_name"`
		Workers    int      `json:"workers"`
		Servers    []server `json:"servers"`
	}{
		ServerName: "eXpServer",
		Workers:    4,
		Servers: []server{
			{Listeners: ls(0), Routes: []route{
				{"req_path": "/", "type": "file_serve", "dir_path": "../public", "index": []string{"index.html"}, "gzip_enable": true, "gzip_level": 8},
				{"req_path": "/redirect", "type": "redirect", "http_status_code": 302, "redirect_url": "http://localhost:8002/"},
			}},
			{Listeners: ls(1), Routes: []route{{"req_path": "/", "type": "reverse_proxy", "upstreams": []string{upstream}}}},
			{Listeners: ls(2), Routes: []route{{"req_path": "/", "type": "redirect", "http_status_code": 302, "redirect_url": "https://expserver.github.io"}}},
			{Listeners: ls(3)},
		},
	}
	b, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		panic(fmt.Sprintf("harness: course config: %v", err)) // static data; cannot fail
	}
	return append(b, '\n')
}

// WriteTree writes files — slash-separated paths relative to root, and their
// contents — creating the folders on the way. Tests build small fake trees
// with it.
func WriteTree(root string, files map[string]string) error {
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
