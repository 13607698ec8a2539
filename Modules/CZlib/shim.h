// zlib's gz* file API reads gzip-compressed and plain files alike, which is
// what the IDX loader wants (Debian ships Fashion-MNIST as .gz).
#include <zlib.h>
