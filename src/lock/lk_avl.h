/*
 * lk_avl.h - intrusive AVL tree with parent pointers and an augmentation
 * hook; internal to the lock engine.
 *
 * The caller embeds struct lk_avl in its object, finds the insertion point
 * with its own comparison and links the node there; the tree rebalances.
 * An optional @aug callback recomputes a node's summary of its subtree
 * (e.g. the largest range end below it) from the node and its children and
 * returns whether the summary changed.  It is called, children before
 * parents, for every node whose subtree changed, except that the walk up
 * stops at the first unchanged node above the restructured part: then no
 * ancestor can change either.  This keeps an update O(1) in the common case
 * instead of a walk to the root.
 *
 * The balance factor (height(right) - height(left), one of -1, 0, 1) lives
 * in the two low bits of the parent pointer: nodes are at least 4-aligned,
 * and a lock node carries two of these links, so the bytes count.
 */
#ifndef SGNFS_LK_AVL_H
#define SGNFS_LK_AVL_H

#include <stdbool.h>
#include <stdint.h>

struct lk_avl {
	struct lk_avl *left;	/* owned by the tree linking this node */
	struct lk_avl *right;
	uintptr_t pb;		/* parent pointer | (balance + 1) */
};

typedef bool (*lk_avl_aug_fn)(struct lk_avl *n);

static inline struct lk_avl *lk_avl_parent(const struct lk_avl *n)
{
	return (struct lk_avl *)(n->pb & ~(uintptr_t)3);
}

static inline int lk_avl_balance(const struct lk_avl *n)
{
	return (int)(n->pb & 3) - 1;
}

/*
 * Link @n as the child at *@link of @parent (NULL for an empty tree, then
 * @link == @root) and rebalance.  O(log n).
 */
void lk_avl_insert(struct lk_avl **root, struct lk_avl *parent,
		   struct lk_avl **link, struct lk_avl *n, lk_avl_aug_fn aug);

/* Unlink @n from the tree and rebalance.  O(log n). */
void lk_avl_erase(struct lk_avl **root, struct lk_avl *n, lk_avl_aug_fn aug);

/* In-order first node, or NULL. */
struct lk_avl *lk_avl_first(struct lk_avl *root);

/* In-order successor of @n, or NULL. */
struct lk_avl *lk_avl_next(const struct lk_avl *n);

/* Height of the subtree at @n after checking parent links and balance
 * factors, or -1 if they are wrong.  For lk_table_check. */
int lk_avl_check(const struct lk_avl *n, const struct lk_avl *parent);

#endif
