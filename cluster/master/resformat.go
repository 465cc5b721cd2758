package master

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Frameworks without the RESERVATION_REFINEMENT capability speak the older
// resource format: a reserved resource carries `role` (and `reservation`
// for a dynamic reservation) instead of the `reservations` stack. The
// master keeps the refined format inside, converts offers to the old one
// for such frameworks, and converts what they send back (Mesos's
// convertResourceFormat).

func refines(f *framework) bool {
	return hasCapability(&f.info, mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT)
}

// toPreRefinement renders resources in the old format.
func toPreRefinement(rs mesos.Resources) mesos.Resources {
	out := make(mesos.Resources, len(rs))
	for i := range rs {
		r := rs[i]
		if n := len(r.Reservations); n > 0 {
			last := r.Reservations[n-1]
			role := last.GetRole()
			r.Role = &role
			if last.GetType() == mesos.Resource_ReservationInfo_DYNAMIC {
				r.Reservation = &mesos.Resource_ReservationInfo{Principal: last.Principal, Labels: last.Labels}
			}
			r.Reservations = nil
		} else if r.Role == nil {
			star := "*"
			r.Role = &star
		}
		out[i] = r
	}
	return out
}

// toRefined converts resources in the old format (role, reservation) to
// the reservations stack; resources already refined are left alone.
func toRefined(rs []mesos.Resource) {
	for i := range rs {
		r := &rs[i]
		role := r.GetRole()
		if len(r.Reservations) == 0 && role != "" && role != "*" {
			ri := mesos.Resource_ReservationInfo{Type: mesos.Resource_ReservationInfo_STATIC.Enum(), Role: &role}
			if r.Reservation != nil {
				ri.Type = mesos.Resource_ReservationInfo_DYNAMIC.Enum()
				ri.Principal, ri.Labels = r.Reservation.Principal, r.Reservation.Labels
			}
			r.Reservations = []mesos.Resource_ReservationInfo{ri}
		}
		r.Role, r.Reservation = nil, nil
	}
}

// refineOperations converts every resource an ACCEPT names.
func refineOperations(ops []mesos.Offer_Operation) {
	for i := range ops {
		op := &ops[i]
		switch {
		case op.Launch != nil:
			for j := range op.Launch.TaskInfos {
				refineTask(&op.Launch.TaskInfos[j])
			}
		case op.LaunchGroup != nil:
			toRefined(op.LaunchGroup.Executor.Resources)
			for j := range op.LaunchGroup.TaskGroup.Tasks {
				refineTask(&op.LaunchGroup.TaskGroup.Tasks[j])
			}
		case op.Reserve != nil:
			toRefined(op.Reserve.Resources)
		case op.Unreserve != nil:
			toRefined(op.Unreserve.Resources)
		case op.Create != nil:
			toRefined(op.Create.Volumes)
		case op.Destroy != nil:
			toRefined(op.Destroy.Volumes)
		}
	}
}

func refineTask(t *mesos.TaskInfo) {
	toRefined(t.Resources)
	if t.Executor != nil {
		toRefined(t.Executor.Resources)
	}
}
