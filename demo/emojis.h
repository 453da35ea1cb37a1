/* demo/emojis.h — emojivoto's emoji (its top-100 list: 99 entries) and their vote methods.
 *
 * A static table, shared by the emoji service (ListAll, FindByShortcode), the voting
 * service (one Vote<Name> method each, named as emojivoto names them: :doughnut: →
 * VoteDoughnut, :100: → Vote100) and the vote bot.
 */
#ifndef MESH_DEMO_EMOJIS_H
#define MESH_DEMO_EMOJIS_H

#include <stddef.h>

struct demo_emoji {
    const char *shortcode; /* ":doughnut:" */
    const char *unicode;   /* UTF-8 */
    const char *vote;      /* "VoteDoughnut" */
};

extern const struct demo_emoji demo_emojis[];
extern const size_t demo_nemojis;

/* The entry for |shortcode|, or NULL. */
const struct demo_emoji *demo_emoji_find(const char *shortcode);

#define DEMO_EMOJI_SERVICE  "emojivoto.v1.EmojiService"
#define DEMO_VOTING_SERVICE "emojivoto.v1.VotingService"

#endif
