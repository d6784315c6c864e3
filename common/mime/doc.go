// Package mime maps a file's extension to its media type using the eXpServer
// course's MIME table (the course's xps_mime), so a served file carries the
// Content-Type the course expects. The table is the course's, in its order;
// where an extension appears more than once the first entry wins, and an
// extension the table lacks gives application/octet-stream.
//
// Three choices depart from the course on purpose:
//
//   - Extensions are matched case-insensitively (ASCII letters only), where
//     the course compares them exactly, so PHOTO.JPG is image/jpeg rather
//     than unknown.
//   - .mp4 is video/mp4, not audio/aac, the course's first entry, which stops
//     browsers playing videos.
//   - .xml is application/xml, not application/rss+xml, the course's first
//     entry, which labels every XML document an RSS feed.
//
// Everything else follows the course table exactly. The table is turned into
// a map once, so a lookup is a single map access and, for an extension that
// is already lower case, allocates nothing.
package mime
