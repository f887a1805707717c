/*
 * lk_rb.h - intrusive red-black tree with parent pointers and an
 * augmentation hook; internal to the lock engine.
 *
 * The caller embeds struct lk_rb in its object, finds the insertion point
 * with its own comparison and links the node there; the tree rebalances.
 * Red-black rather than AVL: rebalancing is O(1) amortized over any mix of
 * inserts and erases (AVL may retrace the whole height on each of an
 * alternating insert/erase of one leaf, which is exactly lock+unlock of one
 * range), and lookups are at most 2 log2(n) deep.
 *
 * An optional @aug callback recomputes a node's summary of its subtree
 * (e.g. the largest range end below it) from the node and its children and
 * returns whether the summary changed.  It is called, children before
 * parents, for every node whose subtree changed, except that the walk up
 * stops at the first unchanged node above the restructured part: then no
 * ancestor can change either.
 *
 * The colour lives in the low bit of the parent pointer (nodes are at least
 * 2-aligned); a lock node carries two of these links, so the bytes count.
 */
#ifndef SGNFS_LK_RB_H
#define SGNFS_LK_RB_H

#include <stdbool.h>
#include <stdint.h>

struct lk_rb {
	struct lk_rb *left;	/* owned by the tree linking this node */
	struct lk_rb *right;
	uintptr_t pc;		/* parent pointer | colour (1 = black) */
};

typedef bool (*lk_rb_aug_fn)(struct lk_rb *n);

static inline struct lk_rb *lk_rb_parent(const struct lk_rb *n)
{
	return (struct lk_rb *)(n->pc & ~(uintptr_t)1);
}

/*
 * Link @n as the child at *@link of @parent (NULL for an empty tree, then
 * @link == @root) and rebalance.  O(log n) to find the spot, O(1)
 * amortized to rebalance.
 */
void lk_rb_insert(struct lk_rb **root, struct lk_rb *parent, struct lk_rb **link,
		  struct lk_rb *n, lk_rb_aug_fn aug);

/* Unlink @n from the tree and rebalance. */
void lk_rb_erase(struct lk_rb **root, struct lk_rb *n, lk_rb_aug_fn aug);

/* @n's own value changed: recompute it and its ancestors, up to the first
 * that does not change.  O(1) typically, O(log n) at most. */
void lk_rb_augment(struct lk_rb *n, lk_rb_aug_fn aug);

/* In-order first node, or NULL. */
struct lk_rb *lk_rb_first(struct lk_rb *root);

/* In-order successor of @n, or NULL. */
struct lk_rb *lk_rb_next(const struct lk_rb *n);

/* Black height of the tree at @root after checking parent links, colours
 * (red nodes have black children, the root is black) and equal black
 * heights, or -1 if something is wrong.  For lk_table_check. */
int lk_rb_check(const struct lk_rb *root);

#endif
