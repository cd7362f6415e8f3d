/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The kernel types mmtrace reads, declared with only the fields it uses.
 *
 * Every struct is marked preserve_access_index, so each field access is
 * recorded as a CO-RE relocation and resolved by name against the running
 * kernel's BTF at load time: offsets and the order of fields here do not
 * matter, names and types do. This keeps the object independent of the
 * kernel it was built on (no generated vmlinux.h in the repository).
 */
#ifndef MMTRACE_KERNEL_H
#define MMTRACE_KERNEL_H

#include <linux/types.h>

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct {
	int counter;
} atomic_t;

struct qstr {
	const unsigned char *name;
};

struct super_block {
	unsigned long s_magic;
};

struct hlist_bl_node {
	struct hlist_bl_node *next, **pprev;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct super_block *d_sb;
	struct hlist_bl_node d_hash;
};

struct vfsmount {
	struct dentry *mnt_root;
};

/* fs/mount.h: struct vfsmount is embedded in struct mount. */
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct file {
	struct path f_path;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct fs_struct {
	struct path root;
};

struct ns_common {
	unsigned int inum;
};

struct mnt_namespace {
	struct ns_common ns;
	struct mount *root;
};

struct nsproxy {
	struct mnt_namespace *mnt_ns;
};

struct vm_special_mapping {
	const char *name;
};

struct vm_area_struct {
	unsigned long vm_start;
	unsigned long vm_end;
	unsigned long vm_flags;
	unsigned long vm_pgoff;
	struct file *vm_file;
	void *vm_private_data;
};

/* include/linux/maple_tree.h (6.1+): the VMAs of an mm, by address. */
struct maple_tree {
	void *ma_root;
};

struct mm_struct {
	struct maple_tree mm_mt;
	int map_count;
	unsigned long total_vm;
	unsigned long mmap_base;
	unsigned long mmap_legacy_base;
	unsigned long mmap_compat_base;
	unsigned long mmap_compat_legacy_base;
	unsigned long task_size;
	unsigned long start_code, end_code, start_data, end_data;
	unsigned long start_brk, brk, start_stack;
	unsigned long arg_start, arg_end;
};

/* mm_struct.mm_lock_seq, which counts write sections of the mmap lock
 * (per-VMA locks, 6.4+): an int bumped as each one ends, then (about
 * 6.13) a seqcount also bumped as each one begins. */
struct seqcount {
	unsigned int sequence;
};

struct mm_struct___seqcount {
	struct seqcount mm_lock_seq;
};

struct mm_struct___int {
	int mm_lock_seq;
};

struct rlimit {
	unsigned long rlim_cur;
	unsigned long rlim_max;
};

struct signal_struct {
	atomic_t live;
	struct rlimit rlim[16];
};

struct thread_info {
	unsigned long flags;
	__u32 status;
};

struct task_struct {
	struct thread_info thread_info;
	int pid;
	int tgid;
	unsigned int personality;
	int exit_code;
	char comm[16];
	struct task_struct *real_parent;
	struct mm_struct *mm;
	struct signal_struct *signal;
	struct files_struct *files;
	struct fs_struct *fs;
	struct nsproxy *nsproxy;
};

struct linux_binprm {
	const char *filename;
};

/* arch/x86/include/asm/ptrace.h (x86_64) */
struct pt_regs {
	unsigned long r10, r9, r8;
	unsigned long bp, bx;
	unsigned long ax, cx, dx, si, di;
	unsigned long orig_ax;
};

struct vm_unmapped_area_info {
	unsigned long flags;
	unsigned long length;
	unsigned long low_limit;
	unsigned long high_limit;
};

struct bpf_iter_task_vma {
	__u64 __opaque[1];
};

#pragma clang attribute pop

#endif /* MMTRACE_KERNEL_H */
