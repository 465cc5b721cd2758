package multilang

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// StormPy is the multilang library's file name.
const StormPy = "storm.py"

// JarPath is the multilang-python jar holding storm.py, relative to a
// Storm home and, under org/apache/storm/, a Maven repository.
const (
	jarName  = "multilang-python-2.8.3.jar"
	JarPath  = "lib/" + jarName
	m2Subdir = "org/apache/storm/multilang-python/2.8.3/" + jarName
)

// FindStormPy reads Storm's storm.py with no JVM: the resources
// directory's own (it wins, as in the topology jar), else the one in
// the multilang-python jar of the first Storm home given, else that jar
// in the local Maven repository. The jar is a zip read in Go.
func FindStormPy(resources string, homes ...string) ([]byte, error) {
	if b, err := os.ReadFile(filepath.Join(resources, StormPy)); err == nil {
		return b, nil
	}
	var jars []string
	for _, h := range homes {
		if h != "" {
			jars = append(jars, filepath.Join(h, filepath.FromSlash(JarPath)))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		jars = append(jars, filepath.Join(home, ".m2", "repository", filepath.FromSlash(m2Subdir)))
	}
	var tried []string
	for _, j := range jars {
		b, err := stormPyFromJar(j)
		if err == nil {
			return b, nil
		}
		tried = append(tried, err.Error())
	}
	return nil, fmt.Errorf("storm.py: not in %s and no multilang-python jar held it (agora dist install storm fetches one): %s", resources, strings.Join(tried, "; "))
}

func stormPyFromJar(jar string) ([]byte, error) {
	z, err := zip.OpenReader(jar)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	for _, f := range z.File {
		if f.Name == "resources/"+StormPy {
			r, err := f.Open()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", jar, err)
			}
			defer r.Close()
			return io.ReadAll(r)
		}
	}
	return nil, errors.New(jar + " holds no resources/" + StormPy)
}
