// Package dockertest gives tests a real Docker Engine and a small image to
// run in it. There is no registry: the image is built on the spot with
// `docker import` (the Engine API's equivalent) from a root file system
// made of Debian's statically linked busybox (package busybox-static) and
// a symlink per applet (sh, echo, cat, sleep, httpd, ...).
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agora-cluster/agora/cluster/clustertest/tier"
	"github.com/agora-cluster/agora/cluster/containerizer/docker"
)

// Busybox is where busybox-static installs the static busybox binary.
const Busybox = "/bin/busybox"

// Engine connects to the local Docker Engine; without one (no socket) the
// docker tier is skipped (failed in CI), and an Engine that is there but
// does not answer fails the test.
func Engine(t testing.TB) *docker.Client {
	t.Helper()
	_, err := os.Stat(docker.DefaultSocket)
	if err != nil {
		err = fmt.Errorf("no Docker Engine on this machine (%v); make test-deps installs and starts one", err)
	}
	tier.Need(t, tier.Docker, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := docker.NewClient(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// EnsureBusybox makes sure the static busybox is installed: as root it
// installs busybox-static with apt-get when it is missing; otherwise it
// fails the test saying what to install.
func EnsureBusybox(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Busybox); err == nil {
		return
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s is missing: install Debian's busybox-static (sudo apt-get install -y busybox-static, or scripts/deps.sh) to build the test image", Busybox)
	}
	install := func(args ...string) ([]byte, error) {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	out, err := install("install", "-y", "busybox-static")
	if err != nil {
		if uout, uerr := install("update"); uerr != nil {
			out = append(out, uout...)
		} else {
			out, err = install("install", "-y", "busybox-static")
		}
	}
	if _, serr := os.Stat(Busybox); serr != nil {
		t.Fatalf("%s is missing and installing busybox-static failed (%v): %s\ninstall it with: apt-get install -y busybox-static", Busybox, err, out)
	}
}

// BusyboxRootfs returns a tar of a minimal root file system: busybox with
// a symlink per applet in /bin, /etc/passwd with root and nobody, /tmp.
func BusyboxRootfs(t testing.TB) []byte {
	t.Helper()
	EnsureBusybox(t)
	bin, err := os.ReadFile(Busybox)
	if err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(Busybox, "--list").Output()
	if err != nil {
		t.Fatalf("%s --list: %v", Busybox, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	add := func(h *tar.Header, body []byte) {
		h.ModTime = now
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if len(body) > 0 {
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, d := range []string{"bin", "etc", "root", "proc", "sys", "dev", "usr", "usr/bin", "var", "mnt"} {
		add(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	}
	add(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}, nil)
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))}, bin)
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" || strings.ContainsAny(applet, "/[") {
			continue
		}
		add(&tar.Header{Name: "bin/" + applet, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
		"etc/hosts":  "127.0.0.1 localhost\n",
	}
	for name, body := range files {
		add(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}, []byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// BusyboxImage imports a busybox image into the Engine under a fresh tag
// and removes it when the test ends. It returns the image reference.
func BusyboxImage(t testing.TB, c *docker.Client) string {
	t.Helper()
	rootfs := BusyboxRootfs(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	ref := "agora-test-busybox:" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.ImportImage(ctx, ref, bytes.NewReader(rootfs), `ENV PATH=/bin:/usr/bin`, `CMD ["/bin/sh"]`); err != nil {
		t.Fatalf("docker import of the busybox rootfs: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.RemoveImage(ctx, ref); err != nil && !docker.IsNotFound(err) {
			t.Errorf("remove test image %s: %v", ref, err)
		}
	})
	return ref
}

// RemoveContainers force-removes, when the test ends, every container
// left with the owner label (a test agent's work directory), so a failed
// test leaves nothing running.
func RemoveContainers(t testing.TB, c *docker.Client, owner string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n, err := c.RemoveLabelled(ctx, docker.LabelOwner+"="+owner)
		if err != nil {
			t.Errorf("remove leftover containers of %s: %v", owner, err)
		}
		if n > 0 {
			t.Logf("removed %d leftover container(s) of %s", n, owner)
		}
	})
}

// StaticExecutor builds examples/executor (agora's example custom
// executor) as a static binary (CGO_ENABLED=0), so it runs in the busybox
// image, into a directory under /var/tmp removed when the test ends
// (native tasks get a private /tmp). It returns the binary's path.
func StaticExecutor(t testing.TB) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir, err := os.MkdirTemp("/var/tmp", "agora-docker-executor-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "example-executor")
	cmd := exec.Command(goTool, "build", "-o", bin, "github.com/agora-cluster/agora/examples/executor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the static example executor: %v\n%s", err, out)
	}
	return bin
}
