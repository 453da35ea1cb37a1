/* demo/emojis.c — the table (from emojivoto's emoji.go list; unicode as UTF-8 escapes). */
#include <string.h>

#include "emojis.h"

const struct demo_emoji demo_emojis[] = {
    {":joy:", "\xf0\x9f\x98\x82", "VoteJoy"}, /* 😂 */
    {":sunglasses:", "\xf0\x9f\x98\x8e", "VoteSunglasses"}, /* 😎 */
    {":doughnut:", "\xf0\x9f\x8d\xa9", "VoteDoughnut"}, /* 🍩 */
    {":stuck_out_tongue_winking_eye:", "\xf0\x9f\x98\x9c", "VoteStuckOutTongueWinkingEye"}, /* 😜 */
    {":money_mouth_face:", "\xf0\x9f\xa4\x91", "VoteMoneyMouthFace"}, /* 🤑 */
    {":flushed:", "\xf0\x9f\x98\xb3", "VoteFlushed"}, /* 😳 */
    {":mask:", "\xf0\x9f\x98\xb7", "VoteMask"}, /* 😷 */
    {":nerd_face:", "\xf0\x9f\xa4\x93", "VoteNerdFace"}, /* 🤓 */
    {":ghost:", "\xf0\x9f\x91\xbb", "VoteGhost"}, /* 👻 */
    {":skull_and_crossbones:", "\xe2\x98\xa0\xef\xb8\x8f", "VoteSkullAndCrossbones"}, /* ☠️ */
    {":heart_eyes_cat:", "\xf0\x9f\x98\xbb", "VoteHeartEyesCat"}, /* 😻 */
    {":hear_no_evil:", "\xf0\x9f\x99\x89", "VoteHearNoEvil"}, /* 🙉 */
    {":see_no_evil:", "\xf0\x9f\x99\x88", "VoteSeeNoEvil"}, /* 🙈 */
    {":speak_no_evil:", "\xf0\x9f\x99\x8a", "VoteSpeakNoEvil"}, /* 🙊 */
    {":boy:", "\xf0\x9f\x91\xa6", "VoteBoy"}, /* 👦 */
    {":girl:", "\xf0\x9f\x91\xa7", "VoteGirl"}, /* 👧 */
    {":man:", "\xf0\x9f\x91\xa8", "VoteMan"}, /* 👨 */
    {":woman:", "\xf0\x9f\x91\xa9", "VoteWoman"}, /* 👩 */
    {":older_man:", "\xf0\x9f\x91\xb4", "VoteOlderMan"}, /* 👴 */
    {":policeman:", "\xf0\x9f\x91\xae", "VotePoliceman"}, /* 👮 */
    {":guardsman:", "\xf0\x9f\x92\x82", "VoteGuardsman"}, /* 💂 */
    {":construction_worker_man:", "\xf0\x9f\x91\xb7", "VoteConstructionWorkerMan"}, /* 👷 */
    {":prince:", "\xf0\x9f\xa4\xb4", "VotePrince"}, /* 🤴 */
    {":princess:", "\xf0\x9f\x91\xb8", "VotePrincess"}, /* 👸 */
    {":man_in_tuxedo:", "\xf0\x9f\xa4\xb5", "VoteManInTuxedo"}, /* 🤵 */
    {":bride_with_veil:", "\xf0\x9f\x91\xb0", "VoteBrideWithVeil"}, /* 👰 */
    {":mrs_claus:", "\xf0\x9f\xa4\xb6", "VoteMrsClaus"}, /* 🤶 */
    {":santa:", "\xf0\x9f\x8e\x85", "VoteSanta"}, /* 🎅 */
    {":turkey:", "\xf0\x9f\xa6\x83", "VoteTurkey"}, /* 🦃 */
    {":rabbit:", "\xf0\x9f\x90\xb0", "VoteRabbit"}, /* 🐰 */
    {":no_good_woman:", "\xf0\x9f\x99\x85", "VoteNoGoodWoman"}, /* 🙅 */
    {":ok_woman:", "\xf0\x9f\x99\x86", "VoteOkWoman"}, /* 🙆 */
    {":raising_hand_woman:", "\xf0\x9f\x99\x8b", "VoteRaisingHandWoman"}, /* 🙋 */
    {":bowing_man:", "\xf0\x9f\x99\x87", "VoteBowingMan"}, /* 🙇 */
    {":man_facepalming:", "\xf0\x9f\xa4\xa6\xe2\x80\x8d\xe2\x99\x82\xef\xb8\x8f", "VoteManFacepalming"}, /* 🤦‍♂️ */
    {":woman_shrugging:", "\xf0\x9f\xa4\xb7\xe2\x80\x8d\xe2\x99\x80\xef\xb8\x8f", "VoteWomanShrugging"}, /* 🤷‍♀️ */
    {":massage_woman:", "\xf0\x9f\x92\x86", "VoteMassageWoman"}, /* 💆 */
    {":walking_man:", "\xf0\x9f\x9a\xb6", "VoteWalkingMan"}, /* 🚶 */
    {":running_man:", "\xf0\x9f\x8f\x83", "VoteRunningMan"}, /* 🏃 */
    {":dancer:", "\xf0\x9f\x92\x83", "VoteDancer"}, /* 💃 */
    {":man_dancing:", "\xf0\x9f\x95\xba", "VoteManDancing"}, /* 🕺 */
    {":dancing_women:", "\xf0\x9f\x91\xaf", "VoteDancingWomen"}, /* 👯 */
    {":rainbow:", "\xf0\x9f\x8c\x88", "VoteRainbow"}, /* 🌈 */
    {":skier:", "\xe2\x9b\xb7", "VoteSkier"}, /* ⛷ */
    {":golfing_man:", "\xf0\x9f\x8f\x8c", "VoteGolfingMan"}, /* 🏌 */
    {":surfing_man:", "\xf0\x9f\x8f\x84", "VoteSurfingMan"}, /* 🏄 */
    {":basketball_man:", "\xe2\x9b\xb9", "VoteBasketballMan"}, /* ⛹ */
    {":biking_man:", "\xf0\x9f\x9a\xb4", "VoteBikingMan"}, /* 🚴 */
    {":point_up_2:", "\xf0\x9f\x91\x86", "VotePointUp2"}, /* 👆 */
    {":vulcan_salute:", "\xf0\x9f\x96\x96", "VoteVulcanSalute"}, /* 🖖 */
    {":metal:", "\xf0\x9f\xa4\x98", "VoteMetal"}, /* 🤘 */
    {":call_me_hand:", "\xf0\x9f\xa4\x99", "VoteCallMeHand"}, /* 🤙 */
    {":thumbsup:", "\xf0\x9f\x91\x8d", "VoteThumbsup"}, /* 👍 */
    {":wave:", "\xf0\x9f\x91\x8b", "VoteWave"}, /* 👋 */
    {":clap:", "\xf0\x9f\x91\x8f", "VoteClap"}, /* 👏 */
    {":raised_hands:", "\xf0\x9f\x99\x8c", "VoteRaisedHands"}, /* 🙌 */
    {":pray:", "\xf0\x9f\x99\x8f", "VotePray"}, /* 🙏 */
    {":dog:", "\xf0\x9f\x90\xb6", "VoteDog"}, /* 🐶 */
    {":cat2:", "\xf0\x9f\x90\x88", "VoteCat2"}, /* 🐈 */
    {":pig:", "\xf0\x9f\x90\xb7", "VotePig"}, /* 🐷 */
    {":hatching_chick:", "\xf0\x9f\x90\xa3", "VoteHatchingChick"}, /* 🐣 */
    {":snail:", "\xf0\x9f\x90\x8c", "VoteSnail"}, /* 🐌 */
    {":bacon:", "\xf0\x9f\xa5\x93", "VoteBacon"}, /* 🥓 */
    {":pizza:", "\xf0\x9f\x8d\x95", "VotePizza"}, /* 🍕 */
    {":taco:", "\xf0\x9f\x8c\xae", "VoteTaco"}, /* 🌮 */
    {":burrito:", "\xf0\x9f\x8c\xaf", "VoteBurrito"}, /* 🌯 */
    {":ramen:", "\xf0\x9f\x8d\x9c", "VoteRamen"}, /* 🍜 */
    {":champagne:", "\xf0\x9f\x8d\xbe", "VoteChampagne"}, /* 🍾 */
    {":tropical_drink:", "\xf0\x9f\x8d\xb9", "VoteTropicalDrink"}, /* 🍹 */
    {":beer:", "\xf0\x9f\x8d\xba", "VoteBeer"}, /* 🍺 */
    {":tumbler_glass:", "\xf0\x9f\xa5\x83", "VoteTumblerGlass"}, /* 🥃 */
    {":world_map:", "\xf0\x9f\x97\xba", "VoteWorldMap"}, /* 🗺 */
    {":beach_umbrella:", "\xf0\x9f\x8f\x96", "VoteBeachUmbrella"}, /* 🏖 */
    {":mountain_snow:", "\xf0\x9f\x8f\x94", "VoteMountainSnow"}, /* 🏔 */
    {":camping:", "\xf0\x9f\x8f\x95", "VoteCamping"}, /* 🏕 */
    {":steam_locomotive:", "\xf0\x9f\x9a\x82", "VoteSteamLocomotive"}, /* 🚂 */
    {":flight_departure:", "\xf0\x9f\x9b\xab", "VoteFlightDeparture"}, /* 🛫 */
    {":rocket:", "\xf0\x9f\x9a\x80", "VoteRocket"}, /* 🚀 */
    {":star2:", "\xf0\x9f\x8c\x9f", "VoteStar2"}, /* 🌟 */
    {":sun_behind_small_cloud:", "\xf0\x9f\x8c\xa4", "VoteSunBehindSmallCloud"}, /* 🌤 */
    {":cloud_with_rain:", "\xf0\x9f\x8c\xa7", "VoteCloudWithRain"}, /* 🌧 */
    {":fire:", "\xf0\x9f\x94\xa5", "VoteFire"}, /* 🔥 */
    {":jack_o_lantern:", "\xf0\x9f\x8e\x83", "VoteJackOLantern"}, /* 🎃 */
    {":balloon:", "\xf0\x9f\x8e\x88", "VoteBalloon"}, /* 🎈 */
    {":tada:", "\xf0\x9f\x8e\x89", "VoteTada"}, /* 🎉 */
    {":trophy:", "\xf0\x9f\x8f\x86", "VoteTrophy"}, /* 🏆 */
    {":iphone:", "\xf0\x9f\x93\xb1", "VoteIphone"}, /* 📱 */
    {":pager:", "\xf0\x9f\x93\x9f", "VotePager"}, /* 📟 */
    {":fax:", "\xf0\x9f\x93\xa0", "VoteFax"}, /* 📠 */
    {":bulb:", "\xf0\x9f\x92\xa1", "VoteBulb"}, /* 💡 */
    {":money_with_wings:", "\xf0\x9f\x92\xb8", "VoteMoneyWithWings"}, /* 💸 */
    {":crystal_ball:", "\xf0\x9f\x94\xae", "VoteCrystalBall"}, /* 🔮 */
    {":underage:", "\xf0\x9f\x94\x9e", "VoteUnderage"}, /* 🔞 */
    {":interrobang:", "\xe2\x81\x89\xef\xb8\x8f", "VoteInterrobang"}, /* ⁉️ */
    {":100:", "\xf0\x9f\x92\xaf", "Vote100"}, /* 💯 */
    {":checkered_flag:", "\xf0\x9f\x8f\x81", "VoteCheckeredFlag"}, /* 🏁 */
    {":crossed_swords:", "\xe2\x9a\x94\xef\xb8\x8f", "VoteCrossedSwords"}, /* ⚔️ */
    {":floppy_disk:", "\xf0\x9f\x92\xbe", "VoteFloppyDisk"}, /* 💾 */
    {":poop:", "\xf0\x9f\x92\xa9", "VotePoop"}, /* 💩 */
};

const size_t demo_nemojis = sizeof(demo_emojis) / sizeof(demo_emojis[0]);

const struct demo_emoji *demo_emoji_find(const char *shortcode)
{
    for (size_t i = 0; i < demo_nemojis; i++)
        if (strcmp(demo_emojis[i].shortcode, shortcode) == 0)
            return &demo_emojis[i];
    return NULL;
}
