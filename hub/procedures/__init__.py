"""Procedures (規程・手順書) and circulated notices (回覧): versioned documents, who they apply to,
read-and-confirm records, and what stations and trainings require of them."""
