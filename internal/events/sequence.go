package events

import "slices"

// maxHeld bounds the records held for one process while an earlier one is
// awaited: a gap that long is not a delayed record but a missing one.
const maxHeld = 4096

// heldTooLong is how long, in kernel time, a gap may stay open before
// Tick gives up on it. A record is late by at most a preemption of its
// thread; a lost one is reported by the next loss poll (100 ms).
const heldTooLong = uint64(2e9)

// Sequencer puts each process's memory records back in the order their
// changes took effect (event_header.seq), which the ring buffer does not
// guarantee: a thread can be preempted between its change and its exit
// record while another thread of the process changes the same range.
// It works on raw records, before decoding, so that a replay of a
// recording (which keeps ring order) is put in order the same way.
type Sequencer struct {
	emit func(raw []byte)
	// Unordered is told when records of pid had to be passed on without
	// an earlier one they follow (it was lost or never came): the order
	// of n records is not known.
	Unordered func(pid uint32, n int)
	procs     map[uint32]*changeOrder
}

type changeOrder struct {
	next      uint32 // the change expected next
	held      map[uint32][]byte
	heldSince uint64 // kernel time of the oldest held record
}

// NewSequencer passes each record to emit, in order.
func NewSequencer(emit func(raw []byte)) *Sequencer {
	return &Sequencer{emit: emit, procs: map[uint32]*changeOrder{}}
}

// Push takes the next record in ring order.
func (s *Sequencer) Push(raw []byte) {
	if len(raw) < sizeHeader {
		s.emit(raw) // the decoder says what is wrong with it
		return
	}
	kind := Kind(hdrKind.get(raw))
	pid := hdrPID.get(raw)
	seq := hdrSeq.get(raw)
	switch kind {
	case KindExec:
		// The old image's changes come before the new image.
		s.release(pid)
		s.procs[pid] = &changeOrder{next: 1}
	case KindFork:
		if len(raw) >= sizeTask {
			child := taskChild.get(raw)
			s.release(child)
			s.procs[child] = &changeOrder{next: 1}
		}
	case KindExit:
		s.release(pid)
		delete(s.procs, pid)
	case KindLost:
		// A lost record may be the one awaited.
		if pid == 0 {
			s.Flush()
		} else {
			s.release(pid)
		}
	case KindMmap, KindMunmap, KindMremap, KindMprotect, KindBrk, KindUnmodeled:
		if seq != 0 && s.hold(pid, seq, raw) {
			return
		}
	}
	s.emit(raw)
}

// hold takes raw, change seq of pid: it holds raw until the changes
// before it are passed on, or passes it on with those it unblocks. It
// returns false for a record that came too late, which the caller passes.
func (s *Sequencer) hold(pid, seq uint32, raw []byte) bool {
	p := s.procs[pid]
	if p == nil {
		// Traced from before its exec or fork was seen (--pid): the
		// loader restarted its numbering at 1.
		p = &changeOrder{next: 1}
		s.procs[pid] = p
	}
	switch {
	case seq == p.next:
		s.emit(raw)
		p.next++
		for {
			r, ok := p.held[p.next]
			if !ok {
				break
			}
			delete(p.held, p.next)
			s.emit(r)
			p.next++
		}
		if len(p.held) == 0 {
			p.heldSince = 0
		}
		return true
	case seq > p.next:
		if p.held == nil {
			p.held = map[uint32][]byte{}
		}
		if len(p.held) == 0 {
			p.heldSince = hdrTime.get(raw)
		}
		p.held[seq] = slices.Clone(raw)
		if len(p.held) >= maxHeld {
			s.release(pid)
		}
		return true
	}
	// Older than what was already passed on: it came too late.
	if s.Unordered != nil {
		s.Unordered(pid, 1)
	}
	return false
}

// release passes on pid's held records in order, giving up on the gaps.
func (s *Sequencer) release(pid uint32) {
	p := s.procs[pid]
	if p == nil || len(p.held) == 0 {
		return
	}
	seqs := make([]uint32, 0, len(p.held))
	for q := range p.held {
		seqs = append(seqs, q)
	}
	slices.Sort(seqs)
	if s.Unordered != nil {
		s.Unordered(pid, len(seqs))
	}
	for _, q := range seqs {
		s.emit(p.held[q])
	}
	p.next = seqs[len(seqs)-1] + 1
	p.held = nil
	p.heldSince = 0
}

// Tick gives up on gaps older than heldTooLong at kernel time now.
func (s *Sequencer) Tick(now uint64) {
	for pid, p := range s.procs {
		if len(p.held) > 0 && now > p.heldSince+heldTooLong {
			s.release(pid)
		}
	}
}

// Flush passes on every held record: the stream has ended.
func (s *Sequencer) Flush() {
	pids := make([]uint32, 0, len(s.procs))
	for pid, p := range s.procs {
		if len(p.held) > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids) // the same output on every run
	for _, pid := range pids {
		s.release(pid)
	}
}
