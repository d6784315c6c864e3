package harness

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
)

// StartWhoAmI starts one upstream (tools/upstream) for each name, each on a
// free port and serving a folder of its own under root that holds
// whoami.txt with the name as its content. A GET /whoami.txt through a
// proxy in front of them then says which one answered. The caller stops
// them; on an error none is left running.
func StartWhoAmI(root string, names ...string) ([]*Upstream, error) {
	ports, err := FreePorts(len(names))
	if err != nil {
		return nil, err
	}
	var ups []*Upstream
	for i, name := range names {
		dir := filepath.Join(root, "upstream-"+name)
		err := errors.Join(os.MkdirAll(dir, 0o755), os.WriteFile(filepath.Join(dir, "whoami.txt"), []byte(name), 0o644))
		if err == nil {
			var u *Upstream
			u, err = StartUpstream(ports[i], dir, false)
			if err == nil {
				ups = append(ups, u)
			}
		}
		if err != nil {
			for _, u := range ups {
				u.Stop()
			}
			return nil, err
		}
	}
	return ups, nil
}

// Addr returns the upstream's address, 127.0.0.1:PORT.
func (u *Upstream) Addr() string { return "127.0.0.1:" + strconv.Itoa(u.Port) }
