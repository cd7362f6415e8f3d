//go:build ignore

// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * mmtrace kernel programs: observe and filter, never judge.
 *
 * sched_process_exec   a new image: mm fields and a snapshot of its VMAs
 * sched_process_fork   children of traced processes are traced too
 * sched_process_exit   the last thread of a traced process is gone
 * raw sys_enter/exit   brk, mmap, mmap2, old mmap, munmap, mremap, mprotect,
 *                      personality, execve, execveat for both x86_64 and
 *                      i386 tasks (syscalls:* tracepoints miss ia32 calls)
 *
 * Untraced tasks cost one array lookup per syscall. Records are submitted
 * without waking the consumer, which drains on a short timer; a wakeup is
 * forced only when the ring is filling. Failed reserves are counted.
 */
#include "kernel.h"
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TASK_COMM_LEN 16
#define PATH_LEN 256
/* Command lines measured here: gcc's cc1 18 arguments in 208 bytes, its
 * collect2 46 in 1169; a JVM with a classpath, several KiB. Longer ones are
 * cut and marked (ARGS_TRUNCATED): a record holds 2 KiB, so that exec and
 * execve records stay small beside the ring (the smallest is 16 KiB). */
#define ARGS_LEN 2048
#define MAX_ARGS 64
#define MAX_PATH_DEPTH 24
#define TS_COMPAT 0x0002
#define RLIMIT_STACK 3

enum event_kind {
	KIND_EXEC = 1,
	KIND_VMA = 2,
	KIND_MMAP = 3,
	KIND_MUNMAP = 4,
	KIND_MREMAP = 5,
	KIND_MPROTECT = 6,
	KIND_BRK = 7,
	KIND_PERSONALITY = 8,
	KIND_EXECVE = 9,
	KIND_FORK = 10,
	KIND_EXIT = 11,
	KIND_LOST = 12,
	/* A call that changes the address space in a way mmtrace does not
	 * model (shmat, io_setup, ...): the consumer marks the image. */
	KIND_UNMODELED = 13,
	/* Up to VMA_BATCH KIND_VMA records in one ring record (struct
	 * vma_batch): the loader splits it, so nothing past it sees it. */
	KIND_VMA_BATCH = 14,
};

enum event_abi {
	ABI_X86_64 = 0,
	ABI_I386 = 1,
};

/* Every record starts with this header; kind says which struct follows. */
struct event_header {
	__u8 kind;
	__u8 abi;
	__u16 _pad0;
	__u32 pid; /* tgid */
	__u32 tid;
	/* Memory calls: the order in which their changes took effect within
	 * the process (1, 2, ... from exec or fork; see handle_lock_released),
	 * 0 if unknown or the call changed nothing. */
	__u32 seq;
	__u64 time; /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
};

/* mmap, munmap, mremap, mprotect, brk, personality. Arguments are
 * normalised across ABIs: addr (hint / old address / requested break /
 * persona), len (length / old length), new_len, new_addr, offset in bytes. */
struct mem_event {
	struct event_header h;
	__u32 syscall;
	__s32 fd;
	__u64 addr;
	__u64 len;
	__u64 new_len;
	__u64 new_addr;
	__u64 offset;
	__u32 prot;
	__u32 flags;
	__s64 ret;
	/* The kernel's last search for free space during the call
	 * (mmap:vm_unmapped_area): how the address was chosen. */
	__u64 search_low, search_high, search_result;
	__u32 search_flags; /* VM_UNMAPPED_AREA_TOPDOWN = 1; SEARCH_ORDER_UNKNOWN */
	__u32 searches;     /* 0: no search, the address came from the caller */
};

/* In mem_event.search_flags: the change's place in seq order is unknown. */
#define SEARCH_ORDER_UNKNOWN 0x80000000

/* An mmap of a file: a mem_event followed by the file's path. */
struct mem_path_event {
	struct mem_event m;
	char path[PATH_LEN];
};

struct exec_event {
	struct event_header h;
	__u32 ppid;
	__u32 old_pid;
	__u32 personality;
	__u8 parent_abi;
	__u8 vmas_known; /* 0: this kernel cannot walk VMAs at exec */
	__u16 _pad;
	__u32 vma_count;
	/* The process's drop counter (lost_by_pid) just before this exec,
	 * saturated: drops up to here hit the image this exec ends, drops
	 * after it the new one. Only the kernel knows where that line is. */
	__u32 lost_before;
	__u64 task_size;
	__u64 start_code, end_code, start_data, end_data;
	__u64 start_brk, brk, start_stack;
	__u64 mmap_base, mmap_legacy_base;
	__u64 mmap_compat_base, mmap_compat_legacy_base;
	__u64 rlim_stack_cur, rlim_stack_max;
	char comm[TASK_COMM_LEN];
	char parent_comm[TASK_COMM_LEN];
	char filename[PATH_LEN];
	/* The task's mount namespace, and its root when that is not the
	 * namespace's (a chroot): paths are as the task sees them. */
	__u32 mnt_ns;
	__u32 _pad2;
	char root[PATH_LEN];
	/* The new image's command line, as the kernel laid it out on its
	 * stack (mm->arg_start..arg_end, NUL after each argument): what the
	 * program receives, whoever exec'd it. */
	__u32 args_len;
	__u16 args_flags; /* ARGS_TRUNCATED */
	__u16 _pad3;
	char args[ARGS_LEN];
};

struct vma_event {
	struct event_header h;
	__u64 start, end, flags, pgoff;
	__u32 index, total;
	char path[PATH_LEN];
};

/* An exec's VMAs, VMA_BATCH to a ring record: a reservation costs more
 * than filling a VMA's record (it takes the ring's lock with interrupts
 * off), and VMAs of one file are neighbours, so a batch names each file
 * once. 8, not more, so that the usual dynamically linked exec (a dozen
 * VMAs) fills two and every test crosses a batch boundary. */
#define VMA_BATCH 8
struct vma_batch {
	struct event_header h; /* kind KIND_VMA_BATCH; pid, tid, time as v[0]'s */
	__u32 count;           /* records in v, 1..VMA_BATCH */
	__u32 stride;          /* sizeof(struct vma_event) */
	struct vma_event v[VMA_BATCH];
};

struct execve_event {
	struct event_header h;
	__u32 syscall;
	__u16 argc;       /* arguments copied into args, NUL separated */
	__u16 args_flags; /* ARGS_TRUNCATED */
	__s64 ret;        /* 0 at entry, -errno when the call failed */
	char filename[PATH_LEN];
	/* Arguments start below ARGS_LEN; the last may run into the second
	 * half, so each copy has a constant bound the verifier can see. */
	char args[2 * ARGS_LEN];
};

/* In execve_event.args_flags: argv had more than the record holds. */
enum args_flag {
	ARGS_TRUNCATED = 1,
};

struct task_event {
	struct event_header h;
	__u32 child; /* fork: the new process */
	__s32 exit_code;
	char comm[TASK_COMM_LEN];
};

/* Made by the consumer, not here: drops counted in lost_by_pid. */
struct lost_event {
	struct event_header h;
	__u64 count;
};

/* What sys_enter saw, waiting for sys_exit on the same thread. */
struct inflight {
	__u8 kind;
	__u8 abi;
	__u16 _pad;
	__u32 syscall;
	__u64 args[6];
	__u64 search_low, search_high, search_result;
	__u32 search_flags;
	__u32 searches;
	__u32 seq; /* see event_header.seq */
	/* The lock path (see "The lock path"): the call was seen when it
	 * took the mmap lock, with the mm's counters then. */
	__u32 lock_path;
	__u64 total_vm;
	__s32 map_count;
	__u32 _pad3;
	__u64 search_len; /* the last search's length (huge-page padding) */
};

/* Scratch space too big for the 512-byte BPF stack. */
struct scratch {
	char path[2 * PATH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* the loader may resize */
} events SEC(".maps");

/*
 * The traced set: one byte per possible tgid (PID_MAX_LIMIT is 2^22 on
 * 64-bit), 64 to an array element. Every syscall of every task asks it,
 * so it is an array, whose lookups the verifier inlines: a miss costs a
 * few ns where a hash lookup cost ~65 ns (make bench). Bytes, not bits:
 * single-byte stores need no atomics (BPF fetch-and-or is 5.12+), and
 * tasks updating neighbouring pids do not disturb each other.
 */
#define PID_LIMIT (1 << 22)
struct traced_block {
	__u8 pid[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PID_LIMIT / 64);
	__type(key, __u32);
	__type(value, struct traced_block);
} traced SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[TASK_COMM_LEN]);
	__type(value, __u8);
} comm_filter SEC(".maps");

struct {
	/* Not an LRU: an LRU may evict a slot between a call's entry and its
	 * exit (seen on 7.3), silently losing the call. Slots are freed when
	 * their thread exits; a full map is counted as lost records. */
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32); /* tid */
	__type(value, struct inflight);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost_total SEC(".maps");

/* Per traced process: how many memory calls have taken effect since its
 * exec or fork (event_header.seq). Reset there and at process exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tgid */
	__type(value, __u32);
} change_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32); /* tgid */
	__type(value, __u64);
} lost_by_pid SEC(".maps");

/*
 * Path scratch buffers, per CPU. Slot 0 serves kernels that never preempt
 * inside our programs. Where they may (programs with backups), two
 * programs can be building paths on one CPU at once, so each claims a
 * free slot of SCRATCH_SLOTS first (atomically) and gives up on the path
 * if none is free, rather than share one.
 */
#define SCRATCH_SLOTS 4

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1 + SCRATCH_SLOTS);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_space SEC(".maps");

struct scratch_claims {
	__u64 busy[SCRATCH_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_claims);
} scratch_busy SEC(".maps");

/*
 * Backups, for kernels that may preempt a task inside our programs. The
 * kernel runs a program at most once per CPU at a time: when a task is
 * preempted inside one (7.3 with its default lazy preemption skipped
 * syscall, exit and mmap_lock programs) every other task on that CPU
 * skips it, counted only as a recursion miss. There the loader loads the
 * "guarded" form of each program (mode PRIMARY), followed on its
 * tracepoint by backups (copies of the BACKUP form, each its own kernel
 * program with its own recursion guard). The first program that runs for
 * an event leaves a mark on the task (task_marks) and does the work; a
 * backup that finds no mark for this event knows every program before it
 * was skipped, does the work and counts it in backup_seen. Marks are left
 * for every task, traced or not, so the loader can compare the primaries'
 * recursion misses with backup_seen exactly: only events every copy
 * skipped are lost, for no one process.
 */
enum program_slot {
	SLOT_ENTER = 0,
	SLOT_EXIT = 1,
	SLOT_PROC_EXIT = 2,
	SLOT_FORK = 3,
	SLOT_EXEC = 4,
	SLOT_SEARCH = 5,
	SLOT_LOCK = 6,          /* mmap_lock_released */
	SLOT_LOCK_ACQUIRED = 7, /* mmap_lock_acquire_returned (the lock path) */
	NR_SLOTS = 8, /* the counter maps' size; the loader reads the slots above */
};

/* How a program body runs. */
#define PLAIN 0   /* no backups on this kernel */
#define PRIMARY 1 /* leaves marks on the task for its backups */
#define BACKUP 2  /* does the work only where no mark says it is done */

/* What the primaries and backups of each program leave on a task, for
 * every task (the loader's accounting needs every skip): */
struct task_marks {
	__u8 in_syscall; /* raw_syscalls: flipped at each entry and exit */
	__u8 exited;     /* sched_process_exit seen */
	__u8 forked;     /* sched_process_fork seen, on the child */
	__u8 _pad[5];
	__u64 exec_bprm;   /* the last exec seen, by its linux_binprm */
	__u64 search_id;   /* the last vm_unmapped_area seen: info ^ result */
	__u64 lock_acquired_id; /* the last mmap lock taken: lock_event_id */
	__u64 lock_released_id; /* the last mmap lock let go */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_marks);
} marks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, __u64); /* calls whose primary was skipped, done by a backup */
} backup_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32);
	__type(value, __u64); /* programs that found no task storage */
} phase_unknown SEC(".maps");

/* Set by the loader before load. */
const volatile __u8 trace_all = 0;   /* trace every new image */
const volatile __u8 filter_comm = 0; /* trace new images whose comm is in comm_filter */
const volatile __u32 self_tgid = 0;  /* never trace mmtrace itself */
const volatile __u64 wakeup_bytes = 1 << 20; /* force a wakeup past this backlog */
const volatile __u8 change_order = 0; /* a mmap_lock_released program numbers changes */
/* The lock programs turn preemption off (see UNPREEMPTED): set where the
 * kernel has the kfuncs and its verifier lets a program call global
 * functions with preemption off (6.12's does not). */
const volatile __u8 lock_unpreempted = 0;

/* Make bpf2go emit Go types for the records. */
const struct mem_path_event *unused_mem_path_event __attribute__((unused));
const struct exec_event *unused_exec_event __attribute__((unused));
const struct vma_event *unused_vma_event __attribute__((unused));
const struct vma_batch *unused_vma_batch __attribute__((unused));
const struct execve_event *unused_execve_event __attribute__((unused));
const struct task_event *unused_task_event __attribute__((unused));
const struct lost_event *unused_lost_event __attribute__((unused));
const enum event_kind *unused_event_kind __attribute__((unused));
const enum event_abi *unused_event_abi __attribute__((unused));
const enum args_flag *unused_args_flag __attribute__((unused));
const enum program_slot *unused_program_slot __attribute__((unused));
const struct traced_block *unused_traced_block __attribute__((unused));

static __always_inline __u8 *traced_byte(__u32 tgid)
{
	__u32 block = tgid / 64;
	struct traced_block *b = bpf_map_lookup_elem(&traced, &block);
	if (!b)
		return NULL;
	return &b->pid[tgid & 63];
}

static __always_inline int is_traced(__u32 tgid)
{
	__u8 *t = traced_byte(tgid);
	return t && *t;
}

static __always_inline void count_lost(__u32 tgid)
{
	__u32 zero = 0;
	__u64 *total = bpf_map_lookup_elem(&lost_total, &zero);
	if (total) /* atomic: another task may be preempted mid-update here */
		__sync_fetch_and_add(total, 1);
	__u64 *n = bpf_map_lookup_elem(&lost_by_pid, &tgid);
	if (n) {
		__sync_fetch_and_add(n, 1);
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&lost_by_pid, &tgid, &one, BPF_NOEXIST);
	}
}

static __always_inline void *reserve(__u64 size, __u32 tgid)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e)
		count_lost(tgid);
	return e;
}

static __always_inline void submit(void *e)
{
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

static __always_inline void fill_header(struct event_header *h, __u8 kind, __u8 abi, __u64 pid_tgid)
{
	h->kind = kind;
	h->abi = abi;
	h->_pad0 = 0;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->seq = 0;
	h->time = bpf_ktime_get_ns();
}

static __always_inline __u8 task_abi(struct task_struct *task)
{
	return (BPF_CORE_READ(task, thread_info.status) & TS_COMPAT) ? ABI_I386 : ABI_X86_64;
}

/* A 32-bit image has a 32-bit TASK_SIZE; unlike TS_COMPAT this does not
 * depend on which syscall the task happens to be in. */
static __always_inline __u8 mm_abi(struct mm_struct *mm)
{
	if (!mm)
		return ABI_X86_64;
	return BPF_CORE_READ(mm, task_size) <= 0xffffffffUL ? ABI_I386 : ABI_X86_64;
}

/* Superblock magic of the anonymous-inode filesystem (anon_inode:...). */
#define ANON_INODE_FS_MAGIC 0x09041934

/* Write n (<= 16) bytes of str ending at *pos in s->path; 0 if no room. */
static __always_inline int prepend(struct scratch *s, int *pos, const char *str, int n)
{
	if (*pos < n + 1 || *pos >= PATH_LEN)
		return 0;
	*pos -= n;
	bpf_probe_read_kernel(&s->path[*pos & (PATH_LEN - 1)], n & 15, str);
	return 1;
}

/*
 * Write the path of (dentry, mnt) at the end of the per-CPU scratch buffer,
 * as /proc/PID/maps shows it to the current task (d_path): relative to the
 * task's root (a chroot or a container's root ends the walk), " (deleted)"
 * after an unlinked file, and pseudo files (memfd, SysV shm, MAP_SHARED
 * /dev/zero, anon_inode) named as their d_dname callbacks name them.
 * bpf_d_path is not allowed in tracepoint programs, so walk the dentries up
 * to the root, crossing mount points, writing components right to left.
 * With ignore_root the walk goes past the task's root (to name the root
 * itself). Returns the offset of the path's first byte in scratch->path
 * (the path ends with NUL at PATH_LEN - 1), or -1 if the path is unknown.
 *
 * A global function: the verifier checks it once, not once per caller
 * state (inlined into the VMA loop it exceeds the complexity limit).
 * Pointers are passed as integers because global functions cannot take
 * kernel pointers on older kernels; they are read with probe reads anyway.
 */
__noinline int path_to_scratch(__u64 dentry_ptr, __u64 vfsmnt_ptr, __u32 slot, __u32 ignore_root)
{
	struct scratch *s = bpf_map_lookup_elem(&scratch_space, &slot);
	struct dentry *dentry = (struct dentry *)dentry_ptr;
	struct vfsmount *vfsmnt = (struct vfsmount *)vfsmnt_ptr;
	if (!s || !dentry)
		return -1;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct dentry *root_dentry = NULL;
	struct vfsmount *root_mnt = NULL;
	if (!ignore_root) {
		root_dentry = BPF_CORE_READ(task, fs, root.dentry);
		root_mnt = BPF_CORE_READ(task, fs, root.mnt);
	}

	struct mount *mnt = NULL;
	if (vfsmnt)
		mnt = (struct mount *)((char *)vfsmnt - bpf_core_field_offset(struct mount, mnt));

	int pos = PATH_LEN - 1; /* components are written ending at pos */
	s->path[PATH_LEN - 1] = 0;

	/* d_unlinked(): hashed out of the dcache but not a root. */
	struct dentry *leaf_parent = BPF_CORE_READ(dentry, d_parent);
	if (leaf_parent != dentry && !BPF_CORE_READ(dentry, d_hash.pprev)) {
		if (!prepend(s, &pos, " (deleted)", 10))
			return -1;
	}

	for (int i = 0; i < MAX_PATH_DEPTH; i++) {
		if (root_dentry && dentry == root_dentry && vfsmnt == root_mnt)
			break; /* the task's own root */
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		struct dentry *mnt_root = vfsmnt ? BPF_CORE_READ(vfsmnt, mnt_root) : NULL;

		if (i == 0 && dentry == parent && dentry != mnt_root) {
			/* A pseudo file, its own root on an internal mount: the
			 * kernel names it by d_dname, from the dentry's name. */
			char comp[64];
			int n = bpf_probe_read_kernel_str(comp, sizeof(comp), BPF_CORE_READ(dentry, d_name.name));
			if (n <= 1)
				return -1;
			n -= 1;
			int anon = BPF_CORE_READ(dentry, d_sb, s_magic) == ANON_INODE_FS_MAGIC;
			if (!anon && !prepend(s, &pos, " (deleted)", 10)) /* simple_dname */
				return -1;
			if (n > pos - 12)
				return -1;
			pos -= n;
			if (pos < 0 || pos >= PATH_LEN)
				return -1;
			bpf_probe_read_kernel(&s->path[pos & (PATH_LEN - 1)], n & 63, comp);
			if (!(anon ? prepend(s, &pos, "anon_inode:", 11) : prepend(s, &pos, "/", 1)))
				return -1;
			return pos;
		}

		if (dentry == mnt_root || dentry == parent) {
			/* At the root of a mount: continue from its mount point. */
			if (!mnt)
				break;
			struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			if (!mnt_parent || mnt_parent == mnt)
				break;
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			vfsmnt = (struct vfsmount *)((char *)mnt + bpf_core_field_offset(struct mount, mnt));
			continue;
		}

		const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
		char comp[64];
		int n = bpf_probe_read_kernel_str(comp, sizeof(comp), name);
		if (n <= 1)
			break;
		n -= 1; /* without NUL */
		if (n > pos - 1)
			return -1; /* no room: rather no path than a wrong one */
		pos -= n;
		if (pos < 0 || pos >= PATH_LEN)
			return -1;
		bpf_probe_read_kernel(&s->path[pos & (PATH_LEN - 1)], n & 63, comp);
		pos -= 1;
		if (pos < 0 || pos >= PATH_LEN)
			return -1;
		s->path[pos & (PATH_LEN - 1)] = '/';
		dentry = parent;
	}
	if (pos >= PATH_LEN - 1 || pos < 0)
		return -1;
	if (s->path[pos & (PATH_LEN - 1)] != '/')
		return -1; /* only " (deleted)" was written */
	return pos;
}

/* A scratch slot for this program run (see scratch_space), or -1. */
static __always_inline int claim_scratch(int mode)
{
	if (mode == PLAIN)
		return 0;
	__u32 zero = 0;
	struct scratch_claims *c = bpf_map_lookup_elem(&scratch_busy, &zero);
	if (!c)
		return -1;
	for (int i = 0; i < SCRATCH_SLOTS; i++)
		if (__sync_val_compare_and_swap(&c->busy[i], 0, 1) == 0)
			return 1 + i;
	return -1;
}

static __always_inline void release_scratch(int slot)
{
	__u32 zero = 0;
	struct scratch_claims *c = bpf_map_lookup_elem(&scratch_busy, &zero);
	if (c && slot >= 1 && slot <= SCRATCH_SLOTS)
		__sync_lock_test_and_set(&c->busy[(slot - 1) & (SCRATCH_SLOTS - 1)], 0);
}

/* Copy the path of (dentry, mnt) into out[PATH_LEN]; out is "" if unknown. */
static __always_inline void dentry_path(struct dentry *dentry, struct vfsmount *mnt, char *out, int mode,
					__u32 ignore_root)
{
	out[0] = 0;
	int slot = claim_scratch(mode);
	if (slot < 0)
		return;
	__u32 key = slot;
	int pos = path_to_scratch((__u64)dentry, (__u64)mnt, key, ignore_root);
	struct scratch *s = bpf_map_lookup_elem(&scratch_space, &key);
	if (s && pos >= 0 && pos < PATH_LEN)
		bpf_probe_read_kernel(out, (PATH_LEN - pos) & (PATH_LEN - 1), &s->path[pos & (PATH_LEN - 1)]);
	if (mode != PLAIN)
		release_scratch(slot);
}

/* Copy the path of file into out[PATH_LEN]; out is "" if unknown. */
static __always_inline void file_path(struct file *file, char *out, int mode)
{
	out[0] = 0;
	if (file)
		dentry_path(BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt), out, mode, 0);
}

/* The task's mount namespace; its root's path in it when the task is
 * chrooted (root is "" otherwise). */
static __always_inline void task_root(struct task_struct *p, struct exec_event *e, int mode)
{
	struct mnt_namespace *ns = BPF_CORE_READ(p, nsproxy, mnt_ns);
	e->mnt_ns = BPF_CORE_READ(ns, ns.inum);
	e->_pad2 = 0;
	e->root[0] = 0;
	struct dentry *rd = BPF_CORE_READ(p, fs, root.dentry);
	struct vfsmount *rm = BPF_CORE_READ(p, fs, root.mnt);
	struct mount *nsroot = BPF_CORE_READ(ns, root);
	struct vfsmount *nsroot_mnt = (struct vfsmount *)((char *)nsroot + bpf_core_field_offset(struct mount, mnt));
	if (rm == nsroot_mnt && rd == BPF_CORE_READ(nsroot_mnt, mnt_root))
		return;
	dentry_path(rd, rm, e->root, mode, 1);
}

static __always_inline void set_traced(__u32 tgid, __u8 on)
{
	__u8 *t = traced_byte(tgid);
	if (t)
		*t = on;
}

static __always_inline void start_tracing(__u32 tgid) { set_traced(tgid, 1); }

/* Decide at exec whether the new image is traced. */
static __always_inline int want_exec(struct task_struct *p, __u32 tgid)
{
	if (is_traced(tgid))
		return 1;
	if (tgid == self_tgid)
		return 0;
	if (filter_comm) {
		char comm[TASK_COMM_LEN] = {};
		BPF_CORE_READ_STR_INTO(&comm, p, comm);
		if (bpf_map_lookup_elem(&comm_filter, comm)) {
			start_tracing(tgid);
			return 1;
		}
	}
	if (trace_all) {
		start_tracing(tgid);
		return 1;
	}
	return 0;
}

/* Copy the image's argv area; a longer one is cut and marked. */
static __always_inline void exec_args(struct mm_struct *mm, struct exec_event *e)
{
	unsigned long start = mm->arg_start, end = mm->arg_end;
	__u64 n = end > start ? end - start : 0;
	e->args_flags = 0;
	e->_pad3 = 0;
	if (n > ARGS_LEN) {
		n = ARGS_LEN;
		e->args_flags = ARGS_TRUNCATED;
	}
	e->args_len = 0;
	if (n > 0 && !bpf_probe_read_user(e->args, n, (void *)start))
		e->args_len = n;
	else if (n > 0)
		e->args_flags = ARGS_TRUNCATED; /* unreadable */
}

static __always_inline struct exec_event *emit_exec(struct task_struct *p, int old_pid,
						     struct linux_binprm *bprm, __u32 vma_count, __u8 vmas_known,
						     int mode)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u64 *dropped = bpf_map_lookup_elem(&lost_by_pid, &tgid);
	__u64 lost_before = dropped ? *dropped : 0;
	/* A new image: its changes are numbered from 1. No other thread is
	 * left to race with this (exec killed them). */
	bpf_map_delete_elem(&change_seq, &tgid);
	struct exec_event *e = reserve(sizeof(*e), tgid);
	if (!e)
		return NULL;
	/* p is the tracepoint's (a BTF pointer): its fields, the mm's and
	 * the parent's are read with direct loads, which cost less than a
	 * probe read each and read 0 where a pointer is NULL. */
	struct mm_struct *mm = p->mm;
	struct task_struct *parent = p->real_parent;

	fill_header(&e->h, KIND_EXEC, mm->task_size <= 0xffffffffUL ? ABI_I386 : ABI_X86_64, pid_tgid);
	e->ppid = parent->tgid;
	e->old_pid = old_pid;
	e->personality = p->personality;
	struct mm_struct *parent_mm = parent->mm;
	e->parent_abi = parent_mm && parent_mm->task_size <= 0xffffffffUL ? ABI_I386 : ABI_X86_64;
	e->vmas_known = vmas_known;
	e->_pad = 0;
	e->vma_count = vma_count;
	e->lost_before = lost_before > 0xffffffff ? 0xffffffff : (__u32)lost_before;
	e->task_size = mm->task_size;
	e->start_code = mm->start_code;
	e->end_code = mm->end_code;
	e->start_data = mm->start_data;
	e->end_data = mm->end_data;
	e->start_brk = mm->start_brk;
	e->brk = mm->brk;
	e->start_stack = mm->start_stack;
	e->mmap_base = mm->mmap_base;
	e->mmap_legacy_base = mm->mmap_legacy_base;
	if (bpf_core_field_exists(mm->mmap_compat_base)) {
		e->mmap_compat_base = mm->mmap_compat_base;
		e->mmap_compat_legacy_base = mm->mmap_compat_legacy_base;
	} else {
		e->mmap_compat_base = 0;
		e->mmap_compat_legacy_base = 0;
	}
	struct signal_struct *sig = p->signal;
	e->rlim_stack_cur = sig->rlim[RLIMIT_STACK].rlim_cur;
	e->rlim_stack_max = sig->rlim[RLIMIT_STACK].rlim_max;
	BPF_CORE_READ_STR_INTO(&e->comm, p, comm);
	BPF_CORE_READ_STR_INTO(&e->parent_comm, parent, comm);
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), bprm->filename);
	task_root(p, e, mode);
	exec_args(mm, e);
	submit(e);
	return e;
}

/* vm_special_mapping names ("[vdso]", "[vvar]") for anonymous special VMAs. */
#define VM_DONTEXPAND 0x00040000UL

/* Fill e with vma, the index-th of total, for the thread pid_tgid at time.
 * prev is the batch's previous record, or NULL: when it maps the same
 * file (prev_file), its path is copied rather than walked again. */
static __always_inline void fill_vma(struct vma_event *e, struct vm_area_struct *vma, __u32 index, __u32 total,
				     __u64 pid_tgid, __u64 time, struct vma_event *prev, __u64 prev_file, int mode)
{
	e->h.kind = KIND_VMA;
	e->h.abi = 0;
	e->h._pad0 = 0;
	e->h.pid = pid_tgid >> 32;
	e->h.tid = (__u32)pid_tgid;
	e->h.seq = 0;
	e->h.time = time;
	/* vma comes from the VMA iterator: a trusted pointer, read directly. */
	e->start = vma->vm_start;
	e->end = vma->vm_end;
	e->flags = vma->vm_flags;
	e->pgoff = vma->vm_pgoff;
	e->index = index;
	e->total = total;
	e->path[0] = 0;
	struct file *file = vma->vm_file;
	if (file && prev && (__u64)file == prev_file) {
		bpf_probe_read_kernel(e->path, sizeof(e->path), prev->path);
	} else if (file) {
		file_path(file, e->path, mode);
	} else if (e->flags & VM_DONTEXPAND) {
		struct vm_special_mapping *sm = BPF_CORE_READ(vma, vm_private_data);
		if (sm)
			bpf_probe_read_kernel_str(e->path, sizeof(e->path), BPF_CORE_READ(sm, name));
	}
}

extern int bpf_iter_task_vma_new(struct bpf_iter_task_vma *it, struct task_struct *task,
				 __u64 addr) __ksym __weak;
extern struct vm_area_struct *bpf_iter_task_vma_next(struct bpf_iter_task_vma *it) __ksym __weak;
extern void bpf_iter_task_vma_destroy(struct bpf_iter_task_vma *it) __ksym __weak;

static __always_inline void count_slot(void *map, __u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(map, &slot);
	if (n) /* atomic: another task may be preempted mid-update here */
		__sync_fetch_and_add(n, 1);
}

/* A primary's marks on task; without them (none could be had) the work
 * is still done, and the loader counts the call as unknown. */
static __always_inline struct task_marks *primary_marks(struct task_struct *task, __u32 slot)
{
	struct task_marks *m = bpf_task_storage_get(&marks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!m)
		count_slot(&phase_unknown, slot);
	return m;
}

/* A backup's view of task's marks. *fresh: the task had none, so the
 * primary (which makes them whenever it runs) did not run. NULL: none
 * could be had; the caller does the work and counts it as unknown. */
static __always_inline struct task_marks *backup_marks(struct task_struct *task, __u32 slot, int *fresh)
{
	struct task_marks *m = bpf_task_storage_get(&marks, task, 0, 0);
	*fresh = !m;
	if (!m) {
		m = bpf_task_storage_get(&marks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!m)
			count_slot(&phase_unknown, slot);
	}
	return m;
}

/* A program in its three forms (see "Backups"): name, name_guarded and
 * name_backup, on tracepoint tp. body runs with mode set to the form's. */
#define THREE_FORMS(tp, name, body, args...)                                     \
	SEC("tp_btf/" tp) int BPF_PROG(name, args) { const int mode = PLAIN; body; }  \
	SEC("tp_btf/" tp) int BPF_PROG(name##_guarded, args) { const int mode = PRIMARY; body; } \
	SEC("tp_btf/" tp) int BPF_PROG(name##_backup, args) { const int mode = BACKUP; body; }

/* A task made or exec'd is inside a syscall as far as the syscall
 * programs' marks go: its first event there is a sys_exit (from clone,
 * or from execve, kernel_execve too). Marks made for it by the fork or
 * exec programs must say so, or a skipped first exit looks done. */
static __always_inline void mark_in_syscall(struct task_struct *task, int mode)
{
	if (mode == PLAIN)
		return;
	struct task_marks *m = bpf_task_storage_get(&marks, task, 0, 0);
	if (m)
		m->in_syscall = 1;
}

/* The guard of a program with an event mark: for PRIMARY, set the mark;
 * for BACKUP, return 0 if it is already set (someone did the work),
 * else set it and count the skip. Returns 1 when the body should run. */
#define GUARD(mode, task, slot, field, value)                                   \
	({                                                                      \
		int __run = 1;                                                  \
		if (mode == PRIMARY) {                                          \
			struct task_marks *__m = primary_marks(task, slot);     \
			if (__m)                                                \
				__m->field = value;                             \
		} else if (mode == BACKUP) {                                    \
			int __fresh;                                            \
			struct task_marks *__m = backup_marks(task, slot, &__fresh); \
			if (__m && !__fresh && __m->field == (value)) {         \
				__run = 0;                                      \
			} else {                                                \
				if (__m)                                        \
					__m->field = value;                     \
				count_slot(&backup_seen, slot);                 \
			}                                                       \
		}                                                               \
		__run;                                                          \
	})

/* Whether this program is the one to report the exec (see "Backups")
 * and the new image is traced. */
static __always_inline int exec_wanted(struct task_struct *p, struct linux_binprm *bprm, int mode)
{
	if (!GUARD(mode, p, SLOT_EXEC, exec_bprm, (__u64)bprm))
		return 0;
	mark_in_syscall(p, mode);
	return want_exec(p, BPF_CORE_READ(p, tgid));
}

static __always_inline void submit_vma_batch(struct vma_batch *b, __u32 n, __u64 pid_tgid, __u64 time)
{
	b->h.kind = KIND_VMA_BATCH;
	b->h.abi = 0;
	b->h._pad0 = 0;
	b->h.pid = pid_tgid >> 32;
	b->h.tid = (__u32)pid_tgid;
	b->h.seq = 0;
	b->h.time = time;
	b->count = n;
	b->stride = sizeof(struct vma_event);
	submit(b);
}

static __always_inline int exec_with_vmas(struct task_struct *p, int old_pid, struct linux_binprm *bprm, int mode)
{
	if (!exec_wanted(p, bprm, mode))
		return 0;

	struct bpf_iter_task_vma it;
	struct vm_area_struct *vma;
	/* The iterator walks the mm's tree, whose VMAs map_count counts. If
	 * it cannot start (its trylock of the mmap lock fails), the VMAs
	 * announced never come and the consumer says the layout is
	 * uncertain. */
	__u32 total = p->mm->map_count;

	emit_exec(p, old_pid, bprm, total, 1, mode);

	/* The VMAs in batches (see vma_batch); a VMA whose batch could not
	 * be reserved is counted lost, as a record would be. */
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();
	struct vma_batch *b = NULL;
	__u64 prev_file = 0;
	__u32 index = 0, n = 0;
	bpf_iter_task_vma_new(&it, p, 0);
	while ((vma = bpf_iter_task_vma_next(&it))) {
		if (!b) {
			b = bpf_ringbuf_reserve(&events, sizeof(*b), 0);
			n = 0;
		}
		if (!b) {
			count_lost(pid_tgid >> 32);
			index++;
			continue;
		}
		struct vma_event *e = &b->v[n & (VMA_BATCH - 1)];
		struct vma_event *prev = n ? &b->v[(n - 1) & (VMA_BATCH - 1)] : NULL;
		fill_vma(e, vma, index, total, pid_tgid, now, prev, prev_file, mode);
		prev_file = (__u64)vma->vm_file;
		index++;
		n++;
		if (n >= VMA_BATCH) {
			submit_vma_batch(b, n, pid_tgid, now);
			b = NULL;
		}
	}
	if (b)
		submit_vma_batch(b, n, pid_tgid, now);
	bpf_iter_task_vma_destroy(&it);
	return 0;
}

/* Kernels with the VMA iterator kfuncs (6.7+): the image with its VMAs. */
THREE_FORMS("sched_process_exec", handle_exec_vmas, return exec_with_vmas(p, old_pid, bprm, mode),
	    struct task_struct *p, int old_pid, struct linux_binprm *bprm)

/* Kernels without them: the image without its VMAs (said in the output). */
static __always_inline int exec_without_vmas(struct task_struct *p, int old_pid, struct linux_binprm *bprm, int mode)
{
	if (!exec_wanted(p, bprm, mode))
		return 0;
	emit_exec(p, old_pid, bprm, 0, 0, mode);
	return 0;
}

THREE_FORMS("sched_process_exec", handle_exec, return exec_without_vmas(p, old_pid, bprm, mode),
	    struct task_struct *p, int old_pid, struct linux_binprm *bprm)

static __always_inline int on_fork(struct task_struct *parent, struct task_struct *child, int mode)
{
	if (!GUARD(mode, child, SLOT_FORK, forked, 1))
		return 0;
	mark_in_syscall(child, mode);
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	if (ptgid == ctgid || !is_traced(ptgid))
		return 0; /* a new thread, or not ours */
	start_tracing(ctgid);
	bpf_map_delete_elem(&change_seq, &ctgid);

	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct task_event *e = reserve(sizeof(*e), ptgid);
	if (!e)
		return 0;
	fill_header(&e->h, KIND_FORK, mm_abi(BPF_CORE_READ(parent, mm)), pid_tgid);
	e->child = ctgid;
	e->exit_code = 0;
	BPF_CORE_READ_STR_INTO(&e->comm, parent, comm);
	submit(e);
	return 0;
}

THREE_FORMS("sched_process_fork", handle_fork, return on_fork(parent, child, mode),
	    struct task_struct *parent, struct task_struct *child)

static __always_inline int on_exit(struct task_struct *p, int mode)
{
	if (!GUARD(mode, p, SLOT_PROC_EXIT, exited, 1))
		return 0;
	__u32 tgid = BPF_CORE_READ(p, tgid);
	if (!is_traced(tgid))
		return 0;
	__u32 tid = BPF_CORE_READ(p, pid);
	bpf_map_delete_elem(&inflight, &tid);
	/* do_exit decrements signal->live before this tracepoint. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	set_traced(tgid, 0);
	bpf_map_delete_elem(&change_seq, &tgid);

	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct task_event *e = reserve(sizeof(*e), tgid);
	if (!e)
		return 0;
	/* The image's ABI: its mm where the tracepoint still sees it (before
	 * exit_mm, as on 6.18), else TS_COMPAT from a 32-bit exit_group. */
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	fill_header(&e->h, KIND_EXIT, mm ? mm_abi(mm) : task_abi(p), pid_tgid);
	e->h.pid = tgid;
	e->h.tid = tid;
	e->child = 0;
	e->exit_code = BPF_CORE_READ(p, exit_code);
	BPF_CORE_READ_STR_INTO(&e->comm, p, comm);
	submit(e);
	return 0;
}

THREE_FORMS("sched_process_exit", handle_exit, return on_exit(p, mode), struct task_struct *p)

/* Syscall numbers: arch/x86/entry/syscalls/syscall_{64,32}.tbl */
#define NR64_MMAP 9
#define NR64_MPROTECT 10
#define NR64_MUNMAP 11
#define NR64_BRK 12
#define NR64_MREMAP 25
#define NR64_EXECVE 59
#define NR64_PERSONALITY 135
#define NR64_EXECVEAT 322
#define NR64_SHMAT 30
#define NR64_SHMDT 67
#define NR64_PRCTL 157
#define NR64_IO_SETUP 206
#define NR64_IO_DESTROY 207
#define NR64_REMAP_FILE_PAGES 216
#define NR64_PKEY_MPROTECT 329

#define NR32_EXECVE 11
#define NR32_BRK 45
#define NR32_OLD_MMAP 90
#define NR32_MUNMAP 91
#define NR32_MPROTECT 125
#define NR32_PERSONALITY 136
#define NR32_MREMAP 163
#define NR32_MMAP2 192
#define NR32_EXECVEAT 358
#define NR32_IPC 117 /* shmat and shmdt, multiplexed */
#define NR32_PRCTL 172
#define NR32_IO_SETUP 245
#define NR32_IO_DESTROY 246
#define NR32_REMAP_FILE_PAGES 257
#define NR32_PKEY_MPROTECT 380
#define NR32_SHMAT 397
#define NR32_SHMDT 398

static __always_inline __u8 syscall_kind(long id, int compat)
{
	if (compat) {
		switch (id) {
		case NR32_BRK: return KIND_BRK;
		case NR32_OLD_MMAP:
		case NR32_MMAP2: return KIND_MMAP;
		case NR32_MUNMAP: return KIND_MUNMAP;
		case NR32_MPROTECT:
		case NR32_PKEY_MPROTECT: return KIND_MPROTECT; /* a key besides */
		case NR32_IPC:
		case NR32_PRCTL:
		case NR32_IO_SETUP:
		case NR32_IO_DESTROY:
		case NR32_REMAP_FILE_PAGES:
		case NR32_SHMAT:
		case NR32_SHMDT: return KIND_UNMODELED;
		case NR32_MREMAP: return KIND_MREMAP;
		case NR32_PERSONALITY: return KIND_PERSONALITY;
		case NR32_EXECVE:
		case NR32_EXECVEAT: return KIND_EXECVE;
		}
		return 0;
	}
	switch (id) {
	case NR64_BRK: return KIND_BRK;
	case NR64_MMAP: return KIND_MMAP;
	case NR64_MUNMAP: return KIND_MUNMAP;
	case NR64_MPROTECT:
	case NR64_PKEY_MPROTECT: return KIND_MPROTECT; /* a key besides */
	case NR64_SHMAT:
	case NR64_SHMDT:
	case NR64_PRCTL:
	case NR64_IO_SETUP:
	case NR64_IO_DESTROY:
	case NR64_REMAP_FILE_PAGES: return KIND_UNMODELED;
	case NR64_MREMAP: return KIND_MREMAP;
	case NR64_PERSONALITY: return KIND_PERSONALITY;
	case NR64_EXECVE:
	case NR64_EXECVEAT: return KIND_EXECVE;
	}
	return 0;
}

/* i386 old_mmap(struct mmap_arg_struct *) */
struct mmap_arg_struct32 {
	__u32 addr, len, prot, flags, fd, offset;
};

/* Copy execve's filename and argv from the caller's memory into e. At
 * syscall entry a string on a page the process never touched cannot be
 * read (no faults here); at exit the kernel has faulted it in. */
static __always_inline void read_execve_args(struct execve_event *e, struct inflight *in)
{
	e->argc = 0;
	e->args_flags = 0;
	e->filename[0] = 0;
	e->args[0] = 0;

	int execveat = in->syscall == (in->abi ? NR32_EXECVEAT : NR64_EXECVEAT);
	const char *filename = (const char *)in->args[execveat ? 1 : 0];
	__u64 argv = in->args[execveat ? 2 : 1];
	bpf_probe_read_user_str(e->filename, sizeof(e->filename), filename);

	__u32 off = 0;
	int ptr_size = in->abi ? 4 : 8;
	int i;
	for (i = 0; i < MAX_ARGS; i++) {
		__u64 arg = 0;
		if (bpf_probe_read_user(&arg, ptr_size, (void *)(argv + i * ptr_size))) {
			e->args_flags |= ARGS_TRUNCATED; /* unreadable: more may follow */
			return;
		}
		if (!arg)
			return;
		if (off >= ARGS_LEN) {
			e->args_flags |= ARGS_TRUNCATED;
			return;
		}
		/* off < ARGS_LEN, so ARGS_LEN bytes from it stay inside args. */
		int n = bpf_probe_read_user_str(&e->args[off & (ARGS_LEN - 1)], ARGS_LEN, (void *)arg);
		if (n < 0) {
			e->args_flags |= ARGS_TRUNCATED;
			return;
		}
		/* 5.10 answers 0 for an empty string (its NUL is written),
		 * newer kernels 1: count the NUL either way. Branchless, so
		 * the verifier's paths through the loop do not double. */
		n += (int)(((__u64)n - 1) >> 63);
		if (n == ARGS_LEN)
			e->args_flags |= ARGS_TRUNCATED; /* this argument was cut */
		off += n;
		e->argc++;
	}
	/* MAX_ARGS copied: cut if the array goes on. */
	__u64 arg = 0;
	if (bpf_probe_read_user(&arg, ptr_size, (void *)(argv + i * ptr_size)) || arg)
		e->args_flags |= ARGS_TRUNCATED;
}

static __always_inline void emit_execve(struct inflight *in, __u64 pid_tgid)
{
	struct execve_event *e = reserve(sizeof(*e), pid_tgid >> 32);
	if (!e)
		return;
	fill_header(&e->h, KIND_EXECVE, in->abi, pid_tgid);
	e->syscall = in->syscall;
	e->ret = 0;
	read_execve_args(e, in);
	submit(e);
}

/* What both attach styles do at syscall entry, once the arguments are in
 * in->args: finish the normalisation and remember the call. */
#define PR_SET_MM 35
#define PR_SET_VMA 0x53564d41
#define IPC_SHMAT 21
#define IPC_SHMDT 22

static __always_inline int on_sys_enter(struct inflight *in, __u64 pid_tgid)
{
	/* Of prctl and i386 ipc, only the operations that change mappings. */
	if (in->kind == KIND_UNMODELED) {
		if (in->syscall == (in->abi ? NR32_PRCTL : NR64_PRCTL) && in->args[0] != PR_SET_MM &&
		    in->args[0] != PR_SET_VMA)
			return 0;
		if (in->abi && in->syscall == NR32_IPC && (in->args[0] & 0xffff) != IPC_SHMAT &&
		    (in->args[0] & 0xffff) != IPC_SHMDT)
			return 0;
	}
	if (in->abi == ABI_I386) {
		if (in->syscall == NR32_OLD_MMAP) {
			/* Arguments live in user memory; read them now. */
			struct mmap_arg_struct32 a = {};
			bpf_probe_read_user(&a, sizeof(a), (void *)in->args[0]);
			in->args[0] = a.addr;
			in->args[1] = a.len;
			in->args[2] = a.prot;
			in->args[3] = a.flags;
			in->args[4] = a.fd;
			in->args[5] = a.offset; /* bytes */
		} else if (in->syscall == NR32_MMAP2) {
			in->args[5] <<= 12; /* offset in pages */
		}
	}
	if (in->kind == KIND_EXECVE) {
		/* Report the call now: when it succeeds the old image is gone at
		 * exit, and across ABIs the exit may be seen with other numbers. */
		emit_execve(in, pid_tgid);
	}
	/* Each thread keeps its slot: writing in place is much cheaper than
	 * an update that allocates (and a delete at exit that frees). */
	__u32 tid = pid_tgid;
	struct inflight *slot = bpf_map_lookup_elem(&inflight, &tid);
	if (slot)
		*slot = *in;
	else if (bpf_map_update_elem(&inflight, &tid, in, BPF_ANY))
		count_lost(pid_tgid >> 32);
	return 0;
}

/* raw_syscalls:sys_enter: read the arguments by ABI. */
static __always_inline int sys_enter(struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32))
		return 0;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u8 abi = task_abi(task);
	__u8 kind = syscall_kind(id, abi == ABI_I386);
	if (!kind)
		return 0;

	struct inflight in = { .kind = kind, .abi = abi, .syscall = id };
	if (abi == ABI_I386) {
		in.args[0] = (__u32)regs->bx;
		in.args[1] = (__u32)regs->cx;
		in.args[2] = (__u32)regs->dx;
		in.args[3] = (__u32)regs->si;
		in.args[4] = (__u32)regs->di;
		in.args[5] = (__u32)regs->bp;
	} else {
		in.args[0] = regs->di;
		in.args[1] = regs->si;
		in.args[2] = regs->dx;
		in.args[3] = regs->r10;
		in.args[4] = regs->r8;
		in.args[5] = regs->r9;
	}
	return on_sys_enter(&in, pid_tgid);
}

/* The syscall programs' guard: the task's in_syscall mark flips at each
 * entry (to 1) and exit (to 0), so a backup knows whether anyone did
 * this very call without telling calls apart. */
static __always_inline int guarded_sys_enter(struct pt_regs *regs, long id, int mode)
{
	if (!GUARD(mode, bpf_get_current_task_btf(), SLOT_ENTER, in_syscall, 1))
		return 0;
	return sys_enter(regs, id);
}

/* Full coverage: every syscall of every task, both ABIs (syscalls:*
 * tracepoints miss ia32 calls). Costs untraced tasks more: see README. */
THREE_FORMS("sys_enter", handle_sys_enter, return guarded_sys_enter(regs, id, mode), struct pt_regs *regs, long id)

/* The syscalls:sys_enter_* / sys_exit_* records (their format files). */
struct syscall_enter_record {
	__u64 common;
	int nr;
	int _pad;
	unsigned long args[6];
};

struct syscall_exit_record {
	__u64 common;
	int nr;
	int _pad;
	long ret;
};

/* 64-bit only (--ia32=off): attached to the sys_enter_* tracepoints of the
 * memory and exec syscalls alone, so other syscalls cost nothing extra. */
SEC("tracepoint/syscalls/sys_enter_mmap")
int handle_enter64(struct syscall_enter_record *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32))
		return 0;
	long id = ctx->nr;
	__u8 kind = syscall_kind(id, 0);
	if (!kind)
		return 0;
	struct inflight in = { .kind = kind, .abi = ABI_X86_64, .syscall = id };
	/* A probe read, not direct loads: records of calls with fewer than six
	 * arguments are shorter, and the kernel refuses to attach a program
	 * whose direct context accesses go past a record's end. The extra
	 * arguments read are never used for those calls. */
	bpf_probe_read_kernel(in.args, sizeof(in.args), ctx->args);
	return on_sys_enter(&in, pid_tgid);
}

/* The call in flight on the current thread of a traced process, or NULL;
 * *pid_tgid is the thread's. */
static __always_inline struct inflight *pending_call(__u64 *pid_tgid)
{
	*pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(*pid_tgid >> 32))
		return NULL;
	__u32 tid = *pid_tgid;
	return bpf_map_lookup_elem(&inflight, &tid);
}

/* The mm's count of write sections of its mmap lock, where the kernel
 * keeps one (6.4+), else 0: it tells the backups (see "Backups") one
 * event of a task from its next. */
static __always_inline __u64 lock_section(struct mm_struct *mm)
{
	struct mm_struct___seqcount *sc = (void *)mm;
	if (bpf_core_field_exists(sc->mm_lock_seq))
		return BPF_CORE_READ(sc, mm_lock_seq.sequence);
	struct mm_struct___int *n = (void *)mm;
	if (bpf_core_field_exists(n->mm_lock_seq))
		return (__u32)BPF_CORE_READ(n, mm_lock_seq);
	return 0;
}

/* Each search for free space inside a traced mmap or mremap: the last
 * one decided the address. */
static __always_inline int on_search(unsigned long addr, struct vm_unmapped_area_info *info, int mode)
{
	/* A search is known by its window and result: a call's searches
	 * differ (a fallback changes the window after a failure). Two
	 * searches in one write section with both equal make a skip of the
	 * second unseen, which the loader then counts as a loss. */
	__u64 id = addr ^ (info->low_limit << 1) ^ (info->high_limit << 2) ^ info->length ^ info->flags;
	struct task_struct *task = bpf_get_current_task_btf();
	/* Searches in different write sections of the mm (map, unmap, map
	 * again) differ too, where the kernel counts sections. */
	if (mode != PLAIN)
		id ^= lock_section(BPF_CORE_READ(task, mm)) * 0x9e3779b97f4a7c15ULL;
	if (!GUARD(mode, task, SLOT_SEARCH, search_id, id))
		return 0;
	__u64 pid_tgid;
	struct inflight *in = pending_call(&pid_tgid);
	if (!in || (in->kind != KIND_MMAP && in->kind != KIND_MREMAP))
		return 0;
	/* info is a BTF pointer here: direct (CO-RE relocated) loads are
	 * cheaper than probe reads on this hot path. */
	in->search_low = info->low_limit;
	in->search_high = info->high_limit;
	in->search_flags = info->flags;
	in->search_len = info->length;
	in->search_result = addr;
	in->searches++;
	return 0;
}

THREE_FORMS("vm_unmapped_area", handle_unmapped_area, return on_search(addr, info, mode),
	    unsigned long addr, struct vm_unmapped_area_info *info)

/*
 * The order in which a traced process's memory calls took effect. Exit
 * records can reach the ring in another order: a thread can be preempted
 * between its change and its exit record while another thread changes the
 * same range. A call changes the VMAs holding the mmap lock for writing
 * (munmap, brk and older mremap may downgrade it to read first); its
 * first such release, traced just before the unlock and so still
 * excluding other writers, numbers the change in change_seq. The
 * consumer applies numbered changes in that order.
 */
/* Give in's change the process's next number; 0 if none could be had.
 * Writers of an mm are serialised by its lock, which the caller holds. */
static __always_inline __u32 number_change(__u32 tgid, struct inflight *in)
{
	__u32 *n = bpf_map_lookup_elem(&change_seq, &tgid);
	if (!n) {
		__u32 zero = 0;
		bpf_map_update_elem(&change_seq, &tgid, &zero, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&change_seq, &tgid);
		if (!n)
			return 0;
	}
	*n += 1;
	in->seq = *n;
	return in->seq;
}

static __always_inline int on_lock_released(struct mm_struct *mm, __u64 write, int backup)
{
	__u64 pid_tgid;
	struct inflight *in = pending_call(&pid_tgid);
	if (!in || in->seq)
		return 0;
	__u32 tgid = pid_tgid >> 32;
	switch (in->kind) {
	case KIND_MMAP:
	case KIND_MPROTECT:
		/* A read release before the write section is a page fault
		 * (i386 old mmap reads its arguments from user memory). */
		if (!(write & 1))
			return 0;
		break;
	case KIND_MUNMAP:
	case KIND_BRK:
	case KIND_MREMAP:
		break;
	default:
		return 0;
	}
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if ((__u64)BPF_CORE_READ(task, mm) != (__u64)mm)
		return 0;
	if (!number_change(tgid, in))
		return 0;
	if (backup) /* the primary would have numbered it: in->seq was 0 */
		count_slot(&backup_seen, SLOT_LOCK);
	return 0;
}

SEC("tp_btf/mmap_lock_released")
int BPF_PROG(handle_lock_released, struct mm_struct *mm, __u64 write)
{
	return on_lock_released(mm, write, 0);
}

SEC("tp_btf/mmap_lock_released")
int BPF_PROG(handle_lock_released_backup, struct mm_struct *mm, __u64 write)
{
	return on_lock_released(mm, write, 1);
}

/* Before 6.13 (about) the tracepoint also passed the memcg path. */
SEC("tp_btf/mmap_lock_released")
int BPF_PROG(handle_lock_released_memcg, struct mm_struct *mm, const char *memcg_path, __u64 write)
{
	return on_lock_released(mm, write, 0);
}

SEC("tp_btf/mmap_lock_released")
int BPF_PROG(handle_lock_released_memcg_backup, struct mm_struct *mm, const char *memcg_path, __u64 write)
{
	return on_lock_released(mm, write, 1);
}

#define MAP_ANONYMOUS 0x20

static __always_inline struct file *fd_file(struct task_struct *task, int fd)
{
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

/* The record of a finished memory call a, which returned ret. */
static __always_inline int emit_mem(struct inflight *in, long ret, __u64 pid_tgid, int mode)
{
	struct inflight a = *in;
	__u32 tgid = pid_tgid >> 32;
	struct file *file = NULL;
	if (a.kind == KIND_MMAP && !(a.args[3] & MAP_ANONYMOUS) && ret >= 0) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		file = fd_file(task, (int)a.args[4]);
	}

	struct mem_event *m;
	if (file) {
		struct mem_path_event *pe = reserve(sizeof(*pe), tgid);
		if (!pe)
			return 0;
		file_path(file, pe->path, mode);
		m = &pe->m;
	} else {
		m = reserve(sizeof(*m), tgid);
		if (!m)
			return 0;
	}
	fill_header(&m->h, a.kind, a.abi, pid_tgid);
	m->syscall = a.syscall;
	m->fd = -1;
	m->addr = a.args[0];
	m->len = 0;
	m->new_len = 0;
	m->new_addr = 0;
	m->offset = 0;
	m->prot = 0;
	m->flags = 0;
	m->ret = ret;
	m->search_low = a.search_low;
	m->search_high = a.search_high;
	m->search_result = a.search_result;
	m->search_flags = a.search_flags;
	m->searches = a.searches;
	m->h.seq = a.seq;
	/* A change that took the mmap lock but was not numbered: every lock
	 * program was skipped, so its order among the process's changes is
	 * not known. (mprotect of 0 bytes succeeds without the lock.) */
	if (change_order && !a.seq && ret >= 0 && a.kind != KIND_PERSONALITY && a.kind != KIND_UNMODELED &&
	    !(a.kind == KIND_MPROTECT && a.args[1] == 0))
		m->search_flags |= SEARCH_ORDER_UNKNOWN;
	switch (a.kind) {
	case KIND_MMAP:
		m->len = a.args[1];
		m->prot = a.args[2];
		m->flags = a.args[3];
		m->fd = (__s32)a.args[4];
		m->offset = a.args[5];
		break;
	case KIND_MUNMAP:
		m->len = a.args[1];
		break;
	case KIND_MPROTECT:
		m->len = a.args[1];
		m->prot = a.args[2];
		break;
	case KIND_MREMAP:
		m->len = a.args[1];
		m->new_len = a.args[2];
		m->flags = a.args[3];
		m->new_addr = a.args[4];
		break;
	case KIND_UNMODELED:
		/* The call's first three arguments, raw: the consumer names
		 * the call by its number and decides what it changed. */
		m->len = a.args[1];
		m->new_len = a.args[2];
		break;
	}
	submit(m);
	return 0;
}

/* nr: the call's number as the exit sees it (compat numbers for i386). */
static __always_inline int on_sys_exit(long ret, long nr, int mode)
{
	__u64 pid_tgid;
	struct inflight *in = pending_call(&pid_tgid);
	if (!in || !in->kind)
		return 0;
	struct inflight a = *in;
	in->kind = 0; /* done; the slot stays for the thread's next call */
	/* A slot left by another call, whose exit every program skipped (a
	 * loss already counted, see backup_seen): never pair it with this one. */
	if (a.kind != KIND_EXECVE && a.syscall != nr)
		return 0;

	if (a.kind == KIND_EXECVE) {
		if (ret >= 0)
			return 0; /* success: sched_process_exec told the story */
		struct execve_event *e = reserve(sizeof(*e), pid_tgid >> 32);
		if (!e)
			return 0;
		fill_header(&e->h, KIND_EXECVE, a.abi, pid_tgid);
		e->syscall = a.syscall;
		e->ret = ret;
		/* Read again: what the entry could not read is in memory now, and
		 * a failed exec should name what it tried, as strace does. */
		read_execve_args(e, &a);
		submit(e);
		return 0;
	}

	if (a.abi == ABI_I386 && ret > 0)
		ret = (__u32)ret; /* compat results are 32-bit addresses */
	if (a.abi == ABI_I386 && (__s32)ret < 0 && (__s32)ret > -4096)
		ret = (__s32)ret;
	return emit_mem(&a, ret, pid_tgid, mode);
}

static __always_inline int guarded_sys_exit(struct pt_regs *regs, long ret, int mode)
{
	if (!GUARD(mode, bpf_get_current_task_btf(), SLOT_EXIT, in_syscall, 0))
		return 0;
	return on_sys_exit(ret, regs->orig_ax, mode);
}

THREE_FORMS("sys_exit", handle_sys_exit, return guarded_sys_exit(regs, ret, mode), struct pt_regs *regs, long ret)

SEC("tracepoint/syscalls/sys_exit_mmap")
int handle_exit64(struct syscall_exit_record *ctx)
{
	return on_sys_exit(ctx->ret, ctx->nr, PLAIN);
}

/*
 * The lock path (6.1+ with bpf_task_pt_regs): no syscall tracepoints.
 *
 * The per-syscall tracepoints make every task on the machine enter the
 * kernel's slow syscall path once any program is attached to them, traced
 * or not. Every change to an address space instead takes the mmap lock for
 * writing, and the mmap_lock tracepoints fire on lock operations alone.
 * When a traced thread takes its mm's lock for writing, the call is read
 * from the thread's saved user registers (the syscall number in orig_ax,
 * the arguments by ABI); when it lets the lock go, the change is done and
 * the outcome is read from the mm itself: brk from mm->brk, an mmap's
 * address from the kernel's last search (or the caller's fixed address),
 * checked against the mm's page count or the VMA now at that address.
 * Calls that fail before they take the lock change nothing and are not
 * seen; exec, fork and exit come from the sched tracepoints as before.
 */
#define PAGE_SIZE 4096UL
#define PMD_SIZE (2UL << 20)
#define MAP_FIXED 0x10
#define MREMAP_FIXED 2
#define MREMAP_DONTUNMAP 4
#define ENOMEM 12
#define EINVAL 22
#define VM_PROT_BITS 7UL /* VM_READ | VM_WRITE | VM_EXEC, PROT_* alike */

/* One maple tree node, read whole (struct maple_node is 256 bytes). */
struct maple_node_words {
	__u64 w[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct maple_node_words);
} maple_scratch SEC(".maps");

#define MAPLE_MAX_DEPTH 10

/* The VMA containing addr, or NULL: mtree_lookup_walk (lib/maple_tree.c)
 * over the mm's tree, which the caller's lock holds still. Node encoding
 * (include/linux/maple_tree.h): the root is a node when its low bits are
 * 10; a node's address is its pointer without the low 8 bits, whose bits
 * 3-6 give its type; leaves (dense, leaf_64) hold the VMAs;
 * range nodes have 15 pivots then 16 slots, allocation-range nodes (the
 * inner nodes of an mm's tree) 9 pivots then 10 slots. */
static __always_inline struct vm_area_struct *vma_at(struct mm_struct *mm, __u64 addr)
{
	__u32 zero = 0;
	struct maple_node_words *n = bpf_map_lookup_elem(&maple_scratch, &zero);
	if (!n)
		return NULL;
	__u64 entry = (__u64)BPF_CORE_READ(mm, mm_mt.ma_root);
	if ((entry & 3) != 2 || entry <= 4096)
		return NULL; /* empty, or a lone entry at index 0 */
	for (int depth = 0; depth < MAPLE_MAX_DEPTH; depth++) {
		/* Below the root, slots of inner nodes hold encoded nodes. */
		if (entry <= 4096)
			return NULL;
		__u64 type = (entry >> 3) & 0xf;
		if (bpf_probe_read_kernel(n->w, sizeof(n->w), (void *)(entry & ~0xffUL)))
			return NULL;
		int pivots = type == 3 ? 9 : 15;
		int offset = pivots;
		for (int i = 0; i < 15; i++) {
			if (i >= pivots)
				break;
			if (n->w[1 + i] >= addr) {
				offset = i;
				break;
			}
		}
		entry = n->w[(pivots + 1 + offset) & 31];
		if (type < 2) /* a leaf: entry is the VMA or nothing */
			return (entry & 7) || entry <= 4096 ? NULL : (struct vm_area_struct *)entry;
	}
	return NULL;
}

/* Whether one VMA maps all of [addr, addr+len) with at least prot. */
static __always_inline int mapped(struct mm_struct *mm, __u64 addr, __u64 len, __u64 prot)
{
	struct vm_area_struct *vma = vma_at(mm, addr);
	if (!vma)
		return 0;
	__u64 flags = BPF_CORE_READ(vma, vm_flags);
	return BPF_CORE_READ(vma, vm_start) <= addr && BPF_CORE_READ(vma, vm_end) >= addr + len &&
	       (flags & prot & VM_PROT_BITS) == (prot & VM_PROT_BITS);
}

static __always_inline __u64 page_align(__u64 n) { return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1); }

/* Where the kernel placed a mapping of len bytes whose address came from
 * its last search: the search's result, unless the search was padded by
 * a huge page for alignment (__thp_get_unmapped_area), which then moved
 * the address up to the file offset's alignment, or by a whole huge page
 * when top-down found it aligned already. */
static __always_inline __u64 searched_address(struct inflight *a, struct mm_struct *mm, __u64 len, __u64 off)
{
	__u64 low = a->search_result;
	if (a->search_len != len + PMD_SIZE)
		return low;
	__u64 up = low + ((off - low) & (PMD_SIZE - 1));
	if (up == low && !mapped(mm, low, len, 0))
		return low + PMD_SIZE;
	return up;
}

/* No call returns an odd address. */
#define RESULT_UNKNOWN 1L

/* What the call a returned, judged from mm now that it is done, or
 * RESULT_UNKNOWN. */
static __always_inline long lock_path_result(struct inflight *a, struct mm_struct *mm)
{
	__s64 pages = (__s64)(mm->total_vm - a->total_vm);
	__u64 task_size = mm->task_size;
	switch (a->kind) {
	case KIND_BRK:
		return mm->brk; /* the break, moved or not */
	case KIND_MMAP: {
		__u64 len = page_align(a->args[1]);
		if (!len || ((a->args[3] & MAP_FIXED) && (a->args[0] & (PAGE_SIZE - 1))))
			return -EINVAL; /* do_mmap's checks, under the lock */
		if (a->searches && a->search_result > -4096UL)
			return a->search_result; /* no room */
		if (a->args[3] & MAP_FIXED)
			return mapped(mm, a->args[0], len, a->args[2]) ? a->args[0] : -ENOMEM;
		/* Nothing is unmapped without MAP_FIXED: a mapping made adds
		 * exactly its pages. */
		if (pages != (__s64)(len >> 12))
			return -ENOMEM;
		if (!a->searches && !(a->args[0] & ~(PAGE_SIZE - 1)))
			return RESULT_UNKNOWN; /* its search was skipped */
		if (!a->searches)
			return a->args[0] & ~(PAGE_SIZE - 1); /* the hint was free */
		return searched_address(a, mm, len, a->args[5]);
	}
	case KIND_MUNMAP: {
		__u64 len = page_align(a->args[1]);
		if ((a->args[0] & (PAGE_SIZE - 1)) || a->args[0] > task_size || a->args[1] > task_size - a->args[0] ||
		    !len)
			return -EINVAL; /* do_vmi_munmap's checks, under the lock */
		return 0;
	}
	case KIND_MPROTECT: {
		__u64 len = page_align(a->args[1]);
		/* A hole or a refused protection fails the call; the first
		 * VMA shows which. (The start was checked before the lock.) */
		return mapped(mm, a->args[0], PAGE_SIZE, a->args[2]) &&
				       mapped(mm, a->args[0] + len - PAGE_SIZE, PAGE_SIZE, a->args[2])
			       ? 0
			       : -ENOMEM;
	}
	case KIND_MREMAP: {
		__u64 old_len = page_align(a->args[1]), new_len = page_align(a->args[2]);
		__u64 flags = a->args[3];
		__u64 to = a->args[0];
		if (flags & MREMAP_FIXED)
			to = a->args[4];
		else if (a->searches && a->search_result > -4096UL)
			return a->search_result;
		else if (a->searches)
			to = searched_address(a, mm, new_len, 0);
		else if (flags & MREMAP_DONTUNMAP)
			/* mremap_to asks for new_addr as a hint: free, so taken
			 * without a search. */
			to = a->args[4] & ~(PAGE_SIZE - 1);
		if (flags & MREMAP_FIXED)
			return mapped(mm, to, new_len, 0) ? to : -ENOMEM;
		__s64 want = (__s64)(new_len >> 12) - (__s64)(old_len >> 12);
		if (flags & MREMAP_DONTUNMAP)
			want = new_len >> 12;
		return pages == want && mapped(mm, to, new_len, 0) ? to : -ENOMEM;
	}
	case KIND_UNMODELED:
		/* The consumer only needs to know whether it changed anything. */
		return pages || mm->map_count != a->map_count ? 0 : -EINVAL;
	}
	return -EINVAL;
}

/* The call's arguments from the thread's saved user registers, by ABI.
 * The lock path reads regs, the task and the mm with direct (CO-RE
 * relocated) loads: they are BTF pointers there, and a probe read per
 * field was most of the programs' cost on a traced mmap loop. */
static __always_inline void regs_args(struct pt_regs *regs, __u8 abi, __u64 *args)
{
	if (abi == ABI_I386) {
		args[0] = (__u32)regs->bx;
		args[1] = (__u32)regs->cx;
		args[2] = (__u32)regs->dx;
		args[3] = (__u32)regs->si;
		args[4] = (__u32)regs->di;
		args[5] = (__u32)regs->bp;
	} else {
		args[0] = regs->di;
		args[1] = regs->si;
		args[2] = regs->dx;
		args[3] = regs->r10;
		args[4] = regs->r8;
		args[5] = regs->r9;
	}
}

/*
 * What tells one mmap lock event of a task from its next: the write
 * section and the kind of event. A task's two read locks inside one
 * section look alike: were the primary skipped on the second, its
 * backups would take it for done and the loader would count a loss
 * (never a silent one). The loader attaches no backups to these programs
 * where the kernel counts no sections.
 */
#define lock_event_id(mm, write, success) ((lock_section(mm) << 2) | (((write) & 1) << 1) | ((success) & 1))

static __always_inline int on_lock_acquired(struct mm_struct *mm, __u64 write, __u64 success, int mode)
{
	if (!GUARD(mode, bpf_get_current_task_btf(), SLOT_LOCK_ACQUIRED, lock_acquired_id,
		   lock_event_id(mm, write, success)))
		return 0;
	if (!(write & 1) || !(success & 1))
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!is_traced(pid_tgid >> 32))
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->mm != mm)
		return 0; /* exec building a new mm, or another process's */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	long id = regs->orig_ax;
	__u8 abi = (task->thread_info.status & TS_COMPAT) ? ABI_I386 : ABI_X86_64;
	__u8 kind = syscall_kind(id, abi == ABI_I386);
	/* Not a memory call: the ELF loader inside execve, a fault that
	 * grows the stack, madvise and others that change no layout. */
	if (!kind || kind == KIND_EXECVE || kind == KIND_PERSONALITY)
		return 0;
	struct inflight in = { .kind = kind, .abi = abi, .syscall = id, .lock_path = 1 };
	regs_args(regs, abi, in.args);
	in.total_vm = mm->total_vm;
	in.map_count = mm->map_count;
	return on_sys_enter(&in, pid_tgid);
}

/* Number the change (see on_lock_released) and report the call. */
static __always_inline int on_lock_done(struct mm_struct *mm, __u64 write, int mode)
{
	if (!GUARD(mode, bpf_get_current_task_btf(), SLOT_LOCK, lock_released_id, lock_event_id(mm, write, 1)))
		return 0;
	__u64 pid_tgid;
	struct inflight *in = pending_call(&pid_tgid);
	if (!in || !in->kind || !in->lock_path)
		return 0;
	__u32 tgid = pid_tgid >> 32;
	struct task_struct *task = bpf_get_current_task_btf();
	if (task->mm != mm)
		return 0;
	if (!in->seq)
		number_change(tgid, in);
	long ret = lock_path_result(in, mm);
	if (ret == RESULT_UNKNOWN) {
		count_lost(tgid);
		in->kind = 0;
		return 0;
	}
	if (in->abi == ABI_I386 && ret > 0)
		ret = (__u32)ret;
	emit_mem(in, ret, pid_tgid, PLAIN);
	in->kind = 0;
	return 0;
}

/*
 * Newer kernels (7.x) run tracepoint programs preemptibly, and the kernel
 * skips a program on a CPU where another task was preempted inside it.
 * Where the kernel has the kfuncs (6.10+) and the loader found its
 * verifier takes them here (lock_unpreempted), the lock programs turn
 * preemption off first thing: what is left preemptible is the few
 * instructions around that, not the body. The entry and bpf_preempt_enable
 * (a preemption point) still are, so where the kernel preempts in kernel
 * mode the loader gives these programs backups too (lock_event_id).
 */
extern void bpf_preempt_disable(void) __ksym __weak;
extern void bpf_preempt_enable(void) __ksym __weak;

#define UNPREEMPTED(call)                                    \
	({                                                   \
		int __r;                                     \
		if (lock_unpreempted && !!bpf_preempt_disable) { \
			bpf_preempt_disable();               \
			__r = call;                          \
			bpf_preempt_enable();                \
		} else {                                     \
			__r = call;                          \
		}                                            \
		__r;                                         \
	})

THREE_FORMS("mmap_lock_acquire_returned", lock_acquired,
	    return UNPREEMPTED(on_lock_acquired(mm, write, success, mode)),
	    struct mm_struct *mm, __u64 write, __u64 success)

/* Before 6.13 (about) the tracepoints also passed the memcg path. */
THREE_FORMS("mmap_lock_acquire_returned", lock_acquired_memcg,
	    return UNPREEMPTED(on_lock_acquired(mm, write, success, mode)),
	    struct mm_struct *mm, const char *memcg_path, __u64 write, __u64 success)

THREE_FORMS("mmap_lock_released", lock_released, return UNPREEMPTED(on_lock_done(mm, write, mode)),
	    struct mm_struct *mm, __u64 write)

THREE_FORMS("mmap_lock_released", lock_released_memcg, return UNPREEMPTED(on_lock_done(mm, write, mode)),
	    struct mm_struct *mm, const char *memcg_path, __u64 write)
