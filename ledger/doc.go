// Package ledger is the service's exact double-entry book: every movement of
// money is a Transaction whose Entries sum to zero, kept per tenant and
// currency in integer minor units (DESIGN.md rule 5).
//
// # Accounts and signs
//
// Three accounts exist. AccountProcessorClearing is money the processor
// holds for us, AccountMerchantBalance is what the merchant has, and
// AccountProcessorFees is what the processor charged. The entries of one
// transaction always sum to zero, so the whole book of a tenant sums to zero
// in every currency (Sums checks that).
//
//	charge of A with fee F:  processor_clearing -A, merchant_balance +(A-F), processor_fees +F
//	refund of R:             processor_clearing +R, merchant_balance -R
//
// Zero legs are omitted. Fees are not returned on a refund, as with Stripe,
// so a merchant's balance is captured - refunded - fees.
//
// # The balance-transaction view
//
// Amount, Fee and Net of a Transaction describe it as the merchant's balance
// sees it, like a Stripe balance transaction: a charge has Amount A, Fee F
// and Net A-F; a refund has Amount -R, Fee 0 and Net -R. Net always equals
// the merchant_balance leg and Fee the processor_fees leg, so summing Net
// over the listed transactions gives the balance.
//
// # Writing
//
// Charge and Refund build balanced transactions; Post writes any number of
// them inside the caller's database transaction, with one multi-row INSERT
// per table however many there are (DESIGN.md rule 7: a batcher can later
// group many payments into one database transaction without changing
// callers). Post asserts every invariant before it writes and the schema
// asserts them again with CHECK constraints. Each source (a payment for a
// charge, a refund for a refund) is booked at most once; a second booking
// is refused with CodeDuplicateSource, which callers treat as "already
// booked".
//
// # Reading
//
// There are no balance rows that each write updates, because such a row is
// a hot key that every payment of a tenant would contend on. Balances and
// Sums aggregate the entries instead. Their cost grows with a tenant's
// history; when that matters, periodic checkpoints written off the payment
// path can bound it without putting a hot row back on the write path.
//
// Get and List check each transaction they read against the same invariants
// that Post asserts, so corrupt rows surface as an internal error instead of
// a wrong answer.
package ledger
