package agent

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// sandboxMode is a sandbox's mode once it belongs to its task's user: the
// user reads and writes it, and every other user on the host cannot even
// list it — another framework's tasks among them, including users that
// share the task user's primary group (such as "users"), so the group has
// no access either. Its parents stay 0755, so the path is traversable but
// leads nowhere; the agent, as root, still serves it through /files.
const sandboxMode = 0o700

// closeSandbox hands sandbox dir to the user its task (or executor) runs
// as under --switch_user and closes it to everyone else, before anything
// is fetched into it. It (through sandboxOwner.close) is the one place
// the agent sets a sandbox's owner and mode; the containerizer's own
// chown at launch then changes nothing. It does nothing without a user,
// when the agent is not root (every task runs as the agent's own user) or
// for root itself (a task running as root reads every sandbox whatever
// their modes).
func closeSandbox(dir, userName string) error {
	o, err := sandboxOwnerOf(userName)
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", dir, err)
	}
	return o.close(dir)
}

// sandboxOwner is the user closeSandbox hands a sandbox to. A launch that
// takes a sandbox from the pool (sandboxpool.go) looks it up first and
// closes the sandbox while it is still in the pool's private directory,
// so that it is never reachable in the tree with the pool's modes.
type sandboxOwner struct {
	name     string
	uid, gid int
}

// sandboxOwnerOf looks up the user a sandbox of a task running as
// userName goes to: nil, with no error, when closeSandbox leaves
// sandboxes as they are made (no user, the agent is not root, or root).
func sandboxOwnerOf(userName string) (*sandboxOwner, error) {
	if userName == "" || os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(userName)
	if err != nil {
		return nil, fmt.Errorf("user %q does not exist on this agent: %w", userName, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q has a non-numeric uid %q or gid %q", userName, u.Uid, u.Gid)
	}
	if uid == 0 {
		return nil, nil
	}
	return &sandboxOwner{name: userName, uid: uid, gid: gid}, nil
}

// close gives dir to o, mode sandboxMode; a nil o does nothing.
func (o *sandboxOwner) close(dir string) error {
	if o == nil {
		return nil
	}
	if err := os.Chown(dir, o.uid, o.gid); err != nil {
		return fmt.Errorf("sandbox %s: hand it to %s: %w", dir, o.name, err)
	}
	if err := os.Chmod(dir, sandboxMode); err != nil {
		return fmt.Errorf("sandbox %s: close it to other users: %w", dir, err)
	}
	return nil
}
