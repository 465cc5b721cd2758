package fs

import (
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Local is the local file system. It has no locality information: its
// blocks carry no hosts, as on a single machine any slot is local.
type Local struct {
	// BlockSize is the split unit it reports; 0 means 32 MiB, Hadoop's
	// fs.local.block.size.
	BlockSize int64
}

func (Local) Open(name string) (File, error) { return os.Open(name) }

func (Local) Create(name string) (io.WriteCloser, error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return nil, err
	}
	return os.Create(name)
}

func (Local) Stat(name string) (iofs.FileInfo, error) { return os.Stat(name) }

func (Local) ReadDir(name string) ([]iofs.FileInfo, error) {
	ents, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	out := make([]iofs.FileInfo, 0, len(ents))
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			if os.IsNotExist(err) {
				continue // removed while listing
			}
			return nil, err
		}
		out = append(out, fi)
	}
	return out, nil
}

func (Local) MkdirAll(name string) error { return os.MkdirAll(name, 0o755) }

func (Local) Rename(oldname, newname string) error {
	if err := os.MkdirAll(filepath.Dir(newname), 0o755); err != nil {
		return err
	}
	return os.Rename(oldname, newname)
}

func (Local) RemoveAll(name string) error { return os.RemoveAll(name) }

func (Local) Glob(pattern string) ([]string, error) {
	m, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	slices.Sort(m)
	return m, nil
}

func (l Local) Blocks(name string) ([]Block, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	return layout(fi.Size(), l.BlockSize, nil), nil
}

// layout cuts size bytes into blocks of blockSize (0: 32 MiB).
func layout(size, blockSize int64, hosts func(i int) []string) []Block {
	if blockSize <= 0 {
		blockSize = 32 << 20
	}
	var out []Block
	for off, i := int64(0), 0; off < size || (size == 0 && i == 0); i++ {
		n := min(blockSize, size-off)
		var h []string
		if hosts != nil {
			h = hosts(i)
		}
		out = append(out, Block{Offset: off, Length: n, Hosts: h})
		off += n
		if size == 0 {
			break
		}
	}
	return out
}

// IsGlob reports whether p contains glob metacharacters.
func IsGlob(p string) bool { return strings.ContainsAny(p, "*?[") }
