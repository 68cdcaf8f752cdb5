/*
 * qemu/queue.h (powercut shim) - the doubly linked list macros the driver
 * uses (QLIST_*), with the BSD <sys/queue.h> LIST semantics: a head points
 * at the first element, each element at the next one and at the pointer
 * that points at it, so removal needs no head.  Written for the shim.
 */
#ifndef QSHIM_QEMU_QUEUE_H
#define QSHIM_QEMU_QUEUE_H

#define QLIST_HEAD(name, type) \
    struct name {              \
        struct type *lh_first; \
    }
#define QLIST_HEAD_INITIALIZER(head) {NULL}
#define QLIST_ENTRY(type)       \
    struct {                    \
        struct type *le_next;   \
        struct type **le_prev;  \
    }
#define QLIST_INIT(head) ((head)->lh_first = NULL)
#define QLIST_EMPTY(head) ((head)->lh_first == NULL)
#define QLIST_FIRST(head) ((head)->lh_first)
#define QLIST_NEXT(elm, field) ((elm)->field.le_next)
#define QLIST_INSERT_HEAD(head, elm, field)                              \
    do {                                                                 \
        if (((elm)->field.le_next = (head)->lh_first) != NULL)          \
            (head)->lh_first->field.le_prev = &(elm)->field.le_next;     \
        (head)->lh_first = (elm);                                        \
        (elm)->field.le_prev = &(head)->lh_first;                        \
    } while (0)
#define QLIST_REMOVE(elm, field)                                         \
    do {                                                                 \
        if ((elm)->field.le_next != NULL)                                \
            (elm)->field.le_next->field.le_prev = (elm)->field.le_prev;  \
        *(elm)->field.le_prev = (elm)->field.le_next;                    \
        (elm)->field.le_next = NULL;                                     \
        (elm)->field.le_prev = NULL;                                     \
    } while (0)
#define QLIST_FOREACH(var, head, field) \
    for ((var) = (head)->lh_first; (var); (var) = (var)->field.le_next)
#define QLIST_FOREACH_SAFE(var, head, field, next_var)                   \
    for ((var) = ((head)->lh_first);                                     \
         (var) && ((next_var) = ((var)->field.le_next), 1);              \
         (var) = (next_var))

/* QTAILQ: only the static initializer of an option list's head is used. */
#define QTAILQ_HEAD_INITIALIZER(head) {NULL}

#endif /* QSHIM_QEMU_QUEUE_H */
