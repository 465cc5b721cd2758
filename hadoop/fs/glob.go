package fs

import (
	"errors"
	iofs "io/fs"
	"path"
	"slices"
	"strings"
)

// walkGlob expands a glob pattern (path.Match syntax) on a file system that
// can only stat and list, one path component at a time: literal components
// are looked up, components with metacharacters are matched against the
// directory's entries. It returns the matches sorted; none is not an
// error.
func walkGlob(fsys FileSystem, pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, err
	}
	pattern = path.Clean("/" + pattern)
	if pattern == "/" {
		return []string{"/"}, nil
	}
	current := []string{"/"}
	parts := strings.Split(strings.TrimPrefix(pattern, "/"), "/")
	for i, part := range parts {
		last := i == len(parts)-1
		var next []string
		for _, dir := range current {
			if !IsGlob(part) {
				p := path.Join(dir, part)
				fi, err := fsys.Stat(p)
				if errors.Is(err, iofs.ErrNotExist) {
					continue
				}
				if err != nil {
					return nil, err
				}
				if last || fi.IsDir() {
					next = append(next, p)
				}
				continue
			}
			ents, err := fsys.ReadDir(dir)
			if errors.Is(err, iofs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for _, e := range ents {
				if ok, _ := path.Match(part, e.Name()); ok && (last || e.IsDir()) {
					next = append(next, path.Join(dir, e.Name()))
				}
			}
		}
		current = next
		if len(current) == 0 {
			return nil, nil
		}
	}
	slices.Sort(current)
	return current, nil
}
