package main

import (
	"flag"
	"time"

	"github.com/agora-cluster/agora/cluster/agent"
	"github.com/agora-cluster/agora/cluster/api"
	"github.com/agora-cluster/agora/frameworks/executor"
)

// executorFlags are the agent's executor flags (Mesos's names; durations
// in Mesos's units, "1mins", or Go's, "1m").
type executorFlags struct {
	registrationTimeout, shutdownGracePeriod, recoveryTimeout, reregistrationTimeout mesosDuration
	recover                                                                          string
}

func (f *executorFlags) register(fs *flag.FlagSet) {
	f.registrationTimeout = mesosDuration(time.Minute)
	f.shutdownGracePeriod = mesosDuration(5 * time.Second)
	f.recoveryTimeout = mesosDuration(15 * time.Minute)
	f.reregistrationTimeout = mesosDuration(2 * time.Second)
	fs.Var(&f.registrationTimeout, "executor_registration_timeout",
		"how long a custom executor has to subscribe before it is destroyed and its tasks fail")
	fs.Var(&f.shutdownGracePeriod, "executor_shutdown_grace_period",
		"time between SHUTDOWN and destroying an executor (ExecutorInfo.shutdown_grace_period overrides it)")
	fs.Var(&f.recoveryTimeout, "recovery_timeout",
		"how long executors of checkpointing frameworks try to re-subscribe after losing the agent (MESOS_RECOVERY_TIMEOUT)")
	fs.Var(&f.reregistrationTimeout, "executor_reregistration_timeout",
		"how long a restarted agent waits for the executors it recovered to re-subscribe, and the longest delay between an executor's re-subscription attempts (MESOS_SUBSCRIPTION_BACKOFF_MAX)")
	fs.StringVar(&f.recover, "recover", agent.RecoverReconnect,
		"reconnect: adopt the live tasks and executors of checkpointing frameworks after a restart; cleanup: destroy them all, forget the checkpoint and exit")
}

func (f *executorFlags) apply(cfg *agent.Config) {
	cfg.ExecutorRegistrationTimeout = time.Duration(f.registrationTimeout)
	cfg.ExecutorShutdownGracePeriod = time.Duration(f.shutdownGracePeriod)
	cfg.RecoveryTimeout = time.Duration(f.recoveryTimeout)
	cfg.ExecutorReregistrationTimeout = time.Duration(f.reregistrationTimeout)
	cfg.Recover = f.recover
}

// mesosDuration is a duration flag that reads Mesos's units ("5secs").
type mesosDuration time.Duration

func (d *mesosDuration) String() string { return api.FormatDuration(time.Duration(*d)) }

func (d *mesosDuration) Set(s string) error {
	v, err := executor.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = mesosDuration(v)
	return nil
}
