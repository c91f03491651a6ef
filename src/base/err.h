/* Operating errors: one enum for the whole library, never mixed with errno. */
#ifndef CRAFT_BASE_ERR_H
#define CRAFT_BASE_ERR_H

#include "craft_base.h" /* enum craft_err, craft_strerror: public, declared there */

#endif
