/* filter: the optional stage on one direction; see filter.h. */
#include "filter.h"

#include <stddef.h>

void filter_free(struct filter *f)
{
	if (f == NULL)
		return;
	ring_free(&f->out);
	f->ops->free(f);
}
