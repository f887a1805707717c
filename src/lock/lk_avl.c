/*
 * lk_avl.c - intrusive AVL tree with parent pointers; see lk_avl.h.
 *
 * Augmentation rule: a rotation recomputes the two (or three) nodes it
 * moves, lowest first; after an insertion or erase the nodes from the
 * deepest changed one upwards are recomputed once more.  Nodes moved by a
 * rotation but off that path keep subtrees the update did not touch, so
 * their value computed during the rotation is final.  The upward walk may
 * stop at a node whose value did not change only once it is above every
 * node that changed place (a moved node's "unchanged" compares with its
 * value in its old place, which its new parent never saw): past the parent
 * of the highest rotation top, or of the node that replaced an erased one.
 */
#include "lk_avl.h"

#include <stddef.h>

static inline void set_parent(struct lk_avl *n, struct lk_avl *p)
{
	n->pb = (uintptr_t)p | (n->pb & 3);
}

static inline void set_balance(struct lk_avl *n, int b)
{
	n->pb = (n->pb & ~(uintptr_t)3) | (uintptr_t)(b + 1);
}

static void replace_child(struct lk_avl **root, struct lk_avl *p,
			  struct lk_avl *old, struct lk_avl *new)
{
	if (!p)
		*root = new;
	else if (p->left == old)
		p->left = new;
	else
		p->right = new;
}

/* x's right child y becomes the subtree's top.  Balances are the caller's. */
static void rot_left(struct lk_avl **root, struct lk_avl *x, lk_avl_aug_fn aug)
{
	struct lk_avl *y = x->right, *p = lk_avl_parent(x);

	x->right = y->left;
	if (y->left)
		set_parent(y->left, x);
	y->left = x;
	replace_child(root, p, x, y);
	set_parent(y, p);
	set_parent(x, y);
	if (aug) {
		aug(x);
		aug(y);
	}
}

static void rot_right(struct lk_avl **root, struct lk_avl *x, lk_avl_aug_fn aug)
{
	struct lk_avl *y = x->left, *p = lk_avl_parent(x);

	x->left = y->right;
	if (y->right)
		set_parent(y->right, x);
	y->right = x;
	replace_child(root, p, x, y);
	set_parent(y, p);
	set_parent(x, y);
	if (aug) {
		aug(x);
		aug(y);
	}
}

/*
 * @x has balance @bal (+2 or -2, not stored).  Rotate it back into shape;
 * return the subtree's new top.  *same is true if the subtree is as high as
 * before the change that unbalanced it shrank or grew it (only possible
 * after an erase, when the taller child was itself balanced).
 */
static struct lk_avl *rebalance(struct lk_avl **root, struct lk_avl *x, int bal,
				lk_avl_aug_fn aug, bool *same)
{
	struct lk_avl *y, *z;
	int yb, zb;

	if (bal > 0) {
		y = x->right;
		yb = lk_avl_balance(y);
		if (yb >= 0) {
			rot_left(root, x, aug);
			set_balance(x, yb == 0 ? 1 : 0);
			set_balance(y, yb == 0 ? -1 : 0);
			*same = yb == 0;
			return y;
		}
		z = y->left;
		zb = lk_avl_balance(z);
		rot_right(root, y, aug);
		rot_left(root, x, aug);
		set_balance(x, zb > 0 ? -1 : 0);
		set_balance(y, zb < 0 ? 1 : 0);
		set_balance(z, 0);
		*same = false;
		return z;
	}
	y = x->left;
	yb = lk_avl_balance(y);
	if (yb <= 0) {
		rot_right(root, x, aug);
		set_balance(x, yb == 0 ? -1 : 0);
		set_balance(y, yb == 0 ? 1 : 0);
		*same = yb == 0;
		return y;
	}
	z = y->right;
	zb = lk_avl_balance(z);
	rot_left(root, y, aug);
	rot_right(root, x, aug);
	set_balance(x, zb < 0 ? 1 : 0);
	set_balance(y, zb > 0 ? -1 : 0);
	set_balance(z, 0);
	*same = false;
	return z;
}

/* Recompute from @c upwards; stop at an unchanged node once @m1 and @m2
 * (NULL: no constraint; both on @c's path to the root) are recomputed. */
static void aug_up(struct lk_avl *c, const struct lk_avl *m1, const struct lk_avl *m2,
		   lk_avl_aug_fn aug)
{
	for (; c; c = lk_avl_parent(c)) {
		bool changed = aug(c);

		if (c == m1)
			m1 = NULL;
		if (c == m2)
			m2 = NULL;
		if (!changed && !m1 && !m2)
			break;
	}
}

/* The node whose recomputation makes @n's new place known above it. */
static inline struct lk_avl *above(struct lk_avl *n)
{
	return lk_avl_parent(n) ? lk_avl_parent(n) : n;
}

void lk_avl_insert(struct lk_avl **root, struct lk_avl *parent,
		   struct lk_avl **link, struct lk_avl *n, lk_avl_aug_fn aug)
{
	struct lk_avl *c, *p, *must;
	bool same;

	n->left = n->right = NULL;
	n->pb = (uintptr_t)parent | 1;
	*link = n;
	must = above(n);	/* the parent has never seen n */

	/* Walk up while the subtree grew. */
	for (c = n; (p = lk_avl_parent(c)); c = p) {
		int b = lk_avl_balance(p) + (p->left == c ? -1 : 1);

		if (b == 0) {
			set_balance(p, 0);
			break;
		}
		if (b == 1 || b == -1) {
			set_balance(p, b);
			continue;
		}
		c = rebalance(root, p, b, aug, &same);
		must = above(c);	/* above the old parent of n */
		break;
	}
	if (aug)
		aug_up(n, must, NULL, aug);
}

void lk_avl_erase(struct lk_avl **root, struct lk_avl *n, lk_avl_aug_fn aug)
{
	struct lk_avl *p = lk_avl_parent(n), *fix, *x, *moved = NULL, *rot = NULL;
	bool left = false, same;

	if (n->left && n->right) {
		/* Put the in-order successor s (no left child) in n's place. */
		struct lk_avl *s = n->right;

		while (s->left)
			s = s->left;
		if (s == n->right) {
			fix = s;	/* s keeps its right subtree: that side shrank */
			left = false;
		} else {
			struct lk_avl *sp = lk_avl_parent(s);

			sp->left = s->right;
			if (s->right)
				set_parent(s->right, sp);
			s->right = n->right;
			set_parent(n->right, s);
			fix = sp;
			left = true;
		}
		s->left = n->left;
		set_parent(n->left, s);
		s->pb = n->pb;		/* n's parent and balance */
		replace_child(root, p, n, s);
		moved = above(s);
	} else {
		struct lk_avl *c = n->left ? n->left : n->right;

		if (c)
			set_parent(c, p);
		if (p)
			left = p->left == n;
		replace_child(root, p, n, c);
		fix = p;
	}

	/* Walk up while the subtree shrank. */
	for (x = fix; x;) {
		int b = lk_avl_balance(x) + (left ? 1 : -1);
		struct lk_avl *top = x, *up;

		if (b == 1 || b == -1) {
			set_balance(x, b);
			break;
		}
		if (b == 0) {
			set_balance(x, 0);
		} else {
			top = rebalance(root, x, b, aug, &same);
			rot = above(top);	/* each one higher than the last */
			if (same)
				break;
		}
		up = lk_avl_parent(top);
		if (up)
			left = up->left == top;
		x = up;
	}
	if (aug)
		aug_up(fix, moved, rot, aug);
}

struct lk_avl *lk_avl_first(struct lk_avl *root)
{
	if (root)
		while (root->left)
			root = root->left;
	return root;
}

struct lk_avl *lk_avl_next(const struct lk_avl *n)
{
	struct lk_avl *p;

	if (n->right) {
		n = n->right;
		while (n->left)
			n = n->left;
		return (struct lk_avl *)n;
	}
	while ((p = lk_avl_parent(n)) && p->right == n)
		n = p;
	return p;
}

int lk_avl_check(const struct lk_avl *n, const struct lk_avl *parent)
{
	int hl, hr;

	if (!n)
		return 0;
	if (lk_avl_parent(n) != parent || (n->pb & 3) == 3)
		return -1;
	hl = lk_avl_check(n->left, n);
	hr = lk_avl_check(n->right, n);
	if (hl < 0 || hr < 0 || hr - hl != lk_avl_balance(n))
		return -1;
	return (hl > hr ? hl : hr) + 1;
}
