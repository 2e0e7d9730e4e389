package daemon

import (
	"context"
	"time"

	"credbroker/authtoken"
)

// EndedRetention is how long the record of a session that failed (or
// met a system error) stays, so that an admin can still read why, before
// the sweep deletes it. Issued sessions' records go as soon as they are
// revoked or expire; without this, failed ones would be kept forever.
const EndedRetention = 7 * 24 * time.Hour

// dropEndedRecords deletes the records of sessions that failed longer
// than EndedRetention ago, and returns how many. Such a session runs
// nothing and has no files left, so its record is all there is.
func (d *Daemon) dropEndedRecords(ctx context.Context) (int, error) {
	ended, err := d.repo.List(ctx, authtoken.ListOptions{Statuses: []authtoken.Status{authtoken.Failed, authtoken.SystemError}, Limit: -1})
	if err != nil {
		return 0, err
	}
	cutoff := d.now().Add(-EndedRetention)
	n := 0
	for _, t := range ended {
		// UpdateTime is when the session failed.
		at := t.UpdateTime
		if at.IsZero() {
			at = t.CreateTime
		}
		if at.After(cutoff) {
			continue
		}
		removed, err := d.repo.Delete(ctx, t.PublicID)
		if err != nil {
			return n, err
		}
		n += removed
	}
	return n, nil
}
