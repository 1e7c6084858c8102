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
// Payouts use two more accounts: AccountPayoutsInTransit holds what left
// the balance and has not arrived, AccountPayoutsPaid what arrived.
//
//	payout of P:             merchant_balance -P, payouts_in_transit +P
//	payout paid:             payouts_in_transit -P, payouts_paid +P (Amount, Fee, Net 0)
//	payout failed, canceled: payouts_in_transit -P, merchant_balance +P
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
// No single balance row is updated by every payment: such a row is a hot
// key that every payment of a tenant would contend on. The posting
// statement adds to one of BalanceSlots running totals per tenant, currency
// and account instead, and Balances sums them. BalancesAt answers a past
// instant from the latest checkpoint before it plus the entries after it;
// the worker's closer (Close) writes checkpoints and seals off the payment
// path, and Verify audits all of it. docs/ARCHITECTURE.md, "The ledger at
// scale", has the design and its measurements.
//
// Get and List check each transaction they read against the same invariants
// that Post asserts, so corrupt rows surface as an internal error instead of
// a wrong answer.
package ledger
