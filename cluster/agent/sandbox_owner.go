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
// is fetched into it. It is the one place the agent sets a sandbox's
// owner and mode; the containerizer's own chown at launch then changes
// nothing. It does nothing without a user, when the agent is not root
// (every task runs as the agent's own user) or for root itself (a task
// running as root reads every sandbox whatever their modes).
func closeSandbox(dir, userName string) error {
	if userName == "" || os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(userName)
	if err != nil {
		return fmt.Errorf("sandbox %s: user %q does not exist on this agent: %w", dir, userName, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("sandbox %s: user %q has a non-numeric uid %q or gid %q", dir, userName, u.Uid, u.Gid)
	}
	if uid == 0 {
		return nil
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("sandbox %s: hand it to %s: %w", dir, userName, err)
	}
	if err := os.Chmod(dir, sandboxMode); err != nil {
		return fmt.Errorf("sandbox %s: close it to other users: %w", dir, err)
	}
	return nil
}
