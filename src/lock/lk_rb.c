/*
 * lk_rb.c - intrusive red-black tree with parent pointers; see lk_rb.h.
 *
 * Insert and erase follow the classic bottom-up algorithms (CLRS): insert
 * recolours upwards while the parent is red and ends with at most two
 * rotations; erase removes a node with at most one child (the in-order
 * successor takes the place of a node with two) and, if a black node went,
 * pushes the missing black up or fixes it with at most three rotations.
 *
 * Augmentation rule: a rotation recomputes the nodes it moves, lowest
 * first; after the update the nodes from the deepest changed one upwards
 * are recomputed once more.  Nodes moved by a rotation but off that path
 * keep subtrees the update did not touch, so their value computed during
 * the rotation is final.  The upward walk may stop at a node whose value
 * did not change only once it is above every node that changed place (a
 * moved node's "unchanged" compares with its value in its old place, which
 * its new parent never saw): past the parent of the highest rotation, of
 * the new leaf, or of the node that replaced an erased one.
 */
#include "lk_rb.h"

#include <stddef.h>

#define RB_BLACK ((uintptr_t)1)

static inline bool is_red(const struct lk_rb *n)
{
	return n && !(n->pc & RB_BLACK);
}

static inline bool is_black(const struct lk_rb *n)
{
	return !is_red(n);		/* NULL leaves are black */
}

static inline void set_black(struct lk_rb *n)
{
	n->pc |= RB_BLACK;
}

static inline void set_red(struct lk_rb *n)
{
	n->pc &= ~RB_BLACK;
}

static inline void set_parent(struct lk_rb *n, struct lk_rb *p)
{
	n->pc = (uintptr_t)p | (n->pc & RB_BLACK);
}

static inline void copy_colour(struct lk_rb *to, const struct lk_rb *from)
{
	to->pc = (to->pc & ~RB_BLACK) | (from->pc & RB_BLACK);
}

/* The node whose recomputation makes @n's new place known above it. */
static inline struct lk_rb *above(struct lk_rb *n)
{
	return lk_rb_parent(n) ? lk_rb_parent(n) : n;
}

static void replace_child(struct lk_rb **root, struct lk_rb *p,
			  struct lk_rb *old, struct lk_rb *new)
{
	if (!p)
		*root = new;
	else if (p->left == old)
		p->left = new;
	else
		p->right = new;
}

/* x's right child y becomes the subtree's top.  Colours are the caller's. */
static struct lk_rb *rot_left(struct lk_rb **root, struct lk_rb *x, lk_rb_aug_fn aug)
{
	struct lk_rb *y = x->right, *p = lk_rb_parent(x);

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
	return y;
}

static struct lk_rb *rot_right(struct lk_rb **root, struct lk_rb *x, lk_rb_aug_fn aug)
{
	struct lk_rb *y = x->left, *p = lk_rb_parent(x);

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
	return y;
}

/* Recompute from @c upwards; stop at an unchanged node once @m1 and @m2
 * (NULL: no constraint; both on @c's path to the root) are recomputed. */
static void aug_up(struct lk_rb *c, const struct lk_rb *m1, const struct lk_rb *m2,
		   lk_rb_aug_fn aug)
{
	for (; c; c = lk_rb_parent(c)) {
		bool changed = aug(c);

		if (c == m1)
			m1 = NULL;
		if (c == m2)
			m2 = NULL;
		if (!changed && !m1 && !m2)
			break;
	}
}

void lk_rb_insert(struct lk_rb **root, struct lk_rb *parent, struct lk_rb **link,
		  struct lk_rb *n, lk_rb_aug_fn aug)
{
	struct lk_rb *x = n, *p, *g, *u, *rot = NULL;

	n->left = n->right = NULL;
	n->pc = (uintptr_t)parent;	/* red */
	*link = n;

	while ((p = lk_rb_parent(x)) && is_red(p)) {
		g = lk_rb_parent(p);	/* exists: the root is black */
		if (p == g->left) {
			u = g->right;
			if (is_red(u)) {
				set_black(p);
				set_black(u);
				set_red(g);
				x = g;
				continue;
			}
			if (x == p->right) {
				rot_left(root, p, aug);
				p = x;
			}
			set_black(p);
			set_red(g);
			rot = rot_right(root, g, aug);
		} else {
			u = g->left;
			if (is_red(u)) {
				set_black(p);
				set_black(u);
				set_red(g);
				x = g;
				continue;
			}
			if (x == p->left) {
				rot_right(root, p, aug);
				p = x;
			}
			set_black(p);
			set_red(g);
			rot = rot_left(root, g, aug);
		}
		break;
	}
	set_black(*root);
	if (aug)
		aug_up(n, above(n), rot ? above(rot) : NULL, aug);
}

/*
 * A black node went from under @p on the side where @x (maybe NULL) now
 * is: restore equal black heights.  Returns the highest rotation top, or
 * NULL.  Only the last iteration rotates; in it, a red-sibling rotation
 * (if any) is above the final one, so the first top of that iteration is
 * the highest.
 */
static struct lk_rb *erase_fixup(struct lk_rb **root, struct lk_rb *p, struct lk_rb *x,
				 lk_rb_aug_fn aug)
{
	struct lk_rb *w, *rot = NULL, *top;

	while (p && is_black(x)) {
		if (x != p->right) {		/* x is the left child (or NULL there) */
			w = p->right;		/* exists: that side has black height >= 1 */
			if (is_red(w)) {
				set_black(w);
				set_red(p);
				rot = rot_left(root, p, aug);
				w = p->right;
			}
			if (is_black(w->left) && is_black(w->right)) {
				set_red(w);
				x = p;
				p = lk_rb_parent(x);
				continue;
			}
			if (is_black(w->right)) {
				set_black(w->left);
				set_red(w);
				rot_right(root, w, aug);
				w = p->right;
			}
			copy_colour(w, p);
			set_black(p);
			set_black(w->right);
			top = rot_left(root, p, aug);
		} else {
			w = p->left;
			if (is_red(w)) {
				set_black(w);
				set_red(p);
				rot = rot_right(root, p, aug);
				w = p->left;
			}
			if (is_black(w->left) && is_black(w->right)) {
				set_red(w);
				x = p;
				p = lk_rb_parent(x);
				continue;
			}
			if (is_black(w->left)) {
				set_black(w->right);
				set_red(w);
				rot_left(root, w, aug);
				w = p->left;
			}
			copy_colour(w, p);
			set_black(p);
			set_black(w->left);
			top = rot_right(root, p, aug);
		}
		if (!rot)
			rot = top;
		x = NULL;
		break;
	}
	if (x)
		set_black(x);
	return rot;
}

void lk_rb_erase(struct lk_rb **root, struct lk_rb *n, lk_rb_aug_fn aug)
{
	struct lk_rb *p = lk_rb_parent(n), *child, *fix, *moved = NULL, *rot = NULL;
	bool black_gone;

	if (n->left && n->right) {
		/* The in-order successor s (no left child) takes n's place and
		 * colour; s's own place loses s's colour. */
		struct lk_rb *s = n->right;

		while (s->left)
			s = s->left;
		child = s->right;
		black_gone = is_black(s);
		if (s == n->right) {
			fix = s;
		} else {
			fix = lk_rb_parent(s);
			fix->left = child;
			if (child)
				set_parent(child, fix);
			s->right = n->right;
			set_parent(n->right, s);
		}
		s->left = n->left;
		set_parent(n->left, s);
		s->pc = n->pc;		/* n's parent and colour */
		replace_child(root, p, n, s);
		moved = above(s);
	} else {
		child = n->left ? n->left : n->right;
		black_gone = is_black(n);
		if (child)
			set_parent(child, p);
		replace_child(root, p, n, child);
		fix = p;
	}
	if (black_gone)
		rot = erase_fixup(root, fix, child, aug);
	if (aug && fix)
		aug_up(fix, moved, rot ? above(rot) : NULL, aug);
}

void lk_rb_augment(struct lk_rb *n, lk_rb_aug_fn aug)
{
	while (n && aug(n))
		n = lk_rb_parent(n);
}

struct lk_rb *lk_rb_first(struct lk_rb *root)
{
	if (root)
		while (root->left)
			root = root->left;
	return root;
}

struct lk_rb *lk_rb_next(const struct lk_rb *n)
{
	struct lk_rb *p;

	if (n->right) {
		n = n->right;
		while (n->left)
			n = n->left;
		return (struct lk_rb *)n;
	}
	while ((p = lk_rb_parent(n)) && p->right == n)
		n = p;
	return p;
}

static int check(const struct lk_rb *n, const struct lk_rb *parent)
{
	int hl, hr;

	if (!n)
		return 1;
	if (lk_rb_parent(n) != parent)
		return -1;
	if (is_red(n) && (is_red(n->left) || is_red(n->right)))
		return -1;
	hl = check(n->left, n);
	hr = check(n->right, n);
	if (hl < 0 || hr < 0 || hl != hr)
		return -1;
	return hl + is_black(n);
}

int lk_rb_check(const struct lk_rb *root)
{
	if (is_red(root))
		return -1;
	return check(root, NULL);
}
